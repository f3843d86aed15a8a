"""A stalled database answers 503 with Retry-After within seconds instead of holding the
worker: web connections to PostgreSQL carry a statement and a lock timeout, and a request
that waits on a row another connection holds is cut off, storing nothing."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

from sessions_app.models import GameSession, Membership

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_web_connections_carry_the_configured_timeouts():
    assert show("statement_timeout") == "4s"
    assert show("lock_timeout") == "3s"
    assert connection.get_connection_params()["connect_timeout"] == 3


@pytest.fixture
def database_timeouts():
    """Set the timeouts of the next connection (milliseconds), as DATABASE_STATEMENT_TIMEOUT
    and DATABASE_LOCK_TIMEOUT would, and put the configured ones back afterwards."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    configured = options.get("options")

    def set_timeouts(*, statement: int, lock: int) -> None:
        options["options"] = f"-c statement_timeout={statement} -c lock_timeout={lock}"
        connection.close()

    yield set_timeouts
    options["options"] = configured
    connection.close()


class RowLock:
    """Another connection, in its own thread, holding a session's row lock until released."""

    def __init__(self, session: GameSession):
        self.session = session
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        params = connection.get_connection_params()
        keys = ("dbname", "user", "password", "host", "port")
        with psycopg.connect(**{k: params[k] for k in keys if params.get(k)}) as other:
            table = GameSession._meta.db_table
            other.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [self.session.pk])
            self.taken.set()
            self.release.wait(timeout=30)
            other.rollback()

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(timeout=10)
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.thread.join(timeout=30)


@pytest.mark.parametrize(
    "timeouts",
    [{"statement": 10_000, "lock": 200}, {"statement": 200, "lock": 0}],
    ids=["lock-timeout", "statement-timeout"],
)
def test_a_request_waiting_on_a_locked_row_gets_503_and_stores_nothing(
    api, database_timeouts, host, member, outsider, session, timeouts
):
    database_timeouts(**timeouts)
    version = session.version

    with RowLock(session):
        response = api.as_(outsider).post(f"/api/v1/sessions/{session.uid}/join")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
    assert GameSession.objects.get(pk=session.pk).version == version
    assert not Membership.objects.filter(session=session, player=outsider).exists()


def test_once_the_lock_is_gone_the_same_request_succeeds(api, database_timeouts, outsider, session):
    database_timeouts(statement=10_000, lock=200)
    with RowLock(session):
        assert api.as_(outsider).post(f"/api/v1/sessions/{session.uid}/join").status_code == 503

    response = api.post(f"/api/v1/sessions/{session.uid}/join")

    assert response.status_code == 200
    assert Membership.objects.filter(session=session, player=outsider).exists()
