"""GET /healthz and GET /readyz: no authentication, JSON, and a readiness 503 that names the
check that failed (a database that does not answer, a migration not applied, Redis down)."""

from __future__ import annotations

import socket

import pytest
from django.db import connection, connections
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from sessions_project import health

REDIS_TEST_URL = "redis://127.0.0.1:6379/3"


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Each test starts with the migration check not yet passed and no Redis client made."""
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(health, "_redis_client", None)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_the_database():
    # No django_db mark: a query here would fail the test (pytest-django blocks the database).
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check(db, settings):
    settings.REDIS_URL = ""

    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_checks_migrations_until_they_have_passed_once(db, settings, django_assert_num_queries):
    settings.REDIS_URL = ""
    Client().get("/readyz")

    # Then only the database's SELECT 1 per probe.
    with django_assert_num_queries(1):
        response = Client().get("/readyz")

    assert response.status_code == 200


def test_readyz_is_503_naming_the_database_when_it_does_not_answer(db, settings, monkeypatch):
    settings.REDIS_URL = ""
    # A real connection to a database that is not there: PostgreSQL on a port nobody
    # listens on, SQLite in a folder that does not exist.
    broken = connections.create_connection("default")
    if broken.vendor == "postgresql":
        broken.settings_dict = {**broken.settings_dict, "HOST": "127.0.0.1", "PORT": closed_port()}
    else:
        broken.settings_dict = {**broken.settings_dict, "NAME": "/nonexistent-folder/db.sqlite3"}
    # `connections["default"]` is this one for the request (put back by monkeypatch.undo()).
    monkeypatch.setitem(vars(connections._connections), "default", broken)

    response = Client().get("/readyz")

    monkeypatch.undo()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["detail"] == "Not ready: the database check failed."
    assert body["checks"] == {"database": "failed: OperationalError", "migrations": "skipped"}
    assert body["requestId"] == response["X-Request-ID"]


def test_readyz_is_503_while_a_migration_is_not_applied(db, settings):
    settings.REDIS_URL = ""
    recorder = MigrationRecorder(connection)
    app, name = max(key for key in recorder.applied_migrations() if key[0] == "sessions_app")
    recorder.record_unapplied(app, name)  # rolled back with the test's transaction

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "failed: 1 migration(s) not applied"}


def test_readyz_checks_redis_when_redis_url_is_set(db, settings):
    settings.REDIS_URL = REDIS_TEST_URL

    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_is_503_naming_redis_when_it_does_not_answer(db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/3"

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "failed: ConnectionError"}


def test_probes_need_no_credentials_and_refuse_writes(db):
    client = Client()

    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
