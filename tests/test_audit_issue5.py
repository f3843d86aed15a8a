"""Audit of issue 5 (lifecycle, workspaces, management commands): the behaviours the other test
files left unshown. Time is the `clock` fixture; nothing sleeps."""

from __future__ import annotations

import subprocess
import threading
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import ManagementUtility, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from players_app.models import Player
from sessions_app import demo
from sessions_app.models import GameSession, Invite, InviteState, Membership, Reservation
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import close_due_sessions, session_close
from sessions_app.services.membership import session_join
from sessions_project.times import iso

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def url(session, suffix: str = "") -> str:
    return f"/api/v1/sessions/{session.uid}{suffix}"


def row(session) -> GameSession:
    return GameSession.objects.get(pk=session.pk)


# --- "After closesAt the session reads as closed everywhere" --------------------------------


def _close_with_grace(host, session) -> None:
    session_close(session_id=session.pk, actor=host, close_after=30)


def _let_it_idle(host, session) -> None:
    """Nothing to do: its idle deadline (idleTimeout 30) runs from the last write."""


@pytest.mark.parametrize("start_deadline", [_close_with_grace, _let_it_idle], ids=["closesAt", "idle"])
def test_past_its_deadline_a_session_reads_closed_on_every_other_route(
    api, host, member, outsider, make_session, clock, start_deadline
):
    """Beyond GET, lists, filters, counts and joins (tests/test_lifecycle.py): the scores
    document, the member filter, invites, reservations, team moves and kicks. None of them
    writes: the row still says what it said, and `version` has not moved."""
    session = make_session(host, num_teams=2, idle_timeout=0 if start_deadline is _close_with_grace else 30)
    session_join(session_id=session.pk, actor=member)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    start_deadline(host, session)
    session = row(session)
    deadline = session.due_at()
    clock.now = deadline  # exactly the deadline: due

    scores = api.as_(host).get(url(session, "/scores")).json()["session"]
    by_member = api.get("/api/v1/sessions", {"user": str(member.uid)}).json()
    accept = api.as_(outsider).post(f"/api/v1/invites/{invite.pk}/accept")
    invited = api.as_(host).post(url(session, "/invites"), {"player": str(PlayerFactory().uid)}, format="json")
    reserved = api.post(url(session, "/reservations"), {"player": str(PlayerFactory().uid)}, format="json")
    kicked = api.post(url(session, "/kick"), {"player": str(member.uid)}, format="json")
    moved = api.as_(member).post(url(session, "/teams/1/join"), format="json")

    assert (scores["status"], scores["closedAt"], scores["version"]) == ("closed", iso(deadline), session.version)
    assert [(s["uid"], s["status"]) for s in by_member] == [(str(session.uid), "closed")]
    assert (accept.status_code, accept.json()["sessionStatus"]) == (409, "closed")
    assert (invited.status_code, invited.json()["code"]) == (409, "session_closed")
    assert (reserved.status_code, reserved.json()["sessionStatus"]) == (409, "closed")
    assert (moved.status_code, moved.json()["code"]) == (409, "session_closed")
    assert (kicked.status_code, kicked.json()["code"]) == (409, "session_closed")
    after = row(session)
    assert (after.status, after.version, after.closed_at) == (session.status, session.version, None)
    assert Invite.objects.get(pk=invite.pk).state == InviteState.PENDING
    assert Membership.objects.filter(session=session).count() == 2
    assert not Reservation.objects.exists()


def test_on_a_closing_session_every_way_of_joining_is_409(api, host, member, outsider, make_session):
    """Invite accepted, a reserved place used, a GET join: "every join gets 409"."""
    session = make_session(host)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    session_close(session_id=session.pk, actor=host, close_after=600)
    version = row(session).version

    accept = api.as_(outsider).post(f"/api/v1/invites/{invite.pk}/accept")
    with_place = api.as_(member).post(url(session, "/join"), format="json")
    by_get = api.as_(member).get(url(session, "/join"))

    for response in (accept, with_place, by_get):
        assert (response.status_code, response.json()["code"], response.json()["sessionStatus"]) == (
            409,
            "not_joinable",
            "closing",
        )
    assert list(Membership.objects.filter(session=session).values_list("player_id", flat=True)) == [host.pk]
    assert row(session).version == version


# --- idle time: "no write (anything that moves version) and no heartbeat" -------------------


def test_what_does_not_move_version_does_not_keep_a_session_alive(api, host, member, make_session, clock):
    session = make_session(host, name="Same name", idle_timeout=60)
    session_join(session_id=session.pk, actor=member)
    version = row(session).version
    clock.advance(seconds=50)

    same_name = api.as_(host).patch(url(session), {"name": "Same name"}, format="json")
    repeated_join = api.as_(member).post(url(session, "/join"), format="json")
    clock.advance(seconds=10)  # 60 s after the last write

    assert (same_name.json()["version"], repeated_join.json()["version"]) == (version, version)
    body = api.get(url(session)).json()
    assert (body["status"], body["closedAt"], body["version"]) == ("closed", iso(clock.now), version)


def test_the_project_idle_timeout_is_one_hour(api, host, clock):
    assert settings.SESSION_IDLE_TIMEOUT == 3600

    created = api.as_(host).post("/api/v1/sessions", {}, format="json").json()
    clock.advance(seconds=3599)
    just_before = api.get(f"/api/v1/sessions/{created['uid']}").json()["status"]
    clock.advance(seconds=1)

    assert created["idleTimeout"] == 3600
    assert just_before == "open"
    assert api.get(f"/api/v1/sessions/{created['uid']}").json()["status"] == "closed"


def test_workspace_id_is_an_indexed_column():
    """Sessions are found by workspace in every findSessions call: the column is indexed."""
    field = GameSession._meta.get_field("workspace_id")
    assert field.db_index
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, GameSession._meta.db_table)
    assert any(c["index"] and c["columns"] == ["workspace_id"] for c in constraints.values())


# --- the sweeper and row locks (PostgreSQL) -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweeper_skips_a_session_a_service_holds_and_a_later_run_closes_it(make_session, clock):
    """SKIP LOCKED: a sweeper never waits behind a write in progress (nor closes under it); the
    next run (cron, a minute later) closes what it skipped. Each session is closed exactly once."""
    host = PlayerFactory(username="sweep-host")
    held, free = (make_session(host, idle_timeout=60) for _ in range(2))
    clock.advance(seconds=61)
    locked, release = threading.Event(), threading.Event()
    swept: list[list[GameSession]] = []
    errors: list[BaseException] = []

    def hold() -> None:  # a service holding the session's row lock
        try:
            with transaction.atomic():
                GameSession.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def sweep() -> None:
        try:
            swept.append(close_due_sessions())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        sweeper.join(10)
        blocked = sweeper.is_alive()
    finally:
        release.set()
        holder.join()
    sweeper.join()

    assert errors == []
    assert not blocked, "the sweeper waited for a row another transaction holds"
    assert [s.pk for s in swept[0]] == [free.pk]
    assert row(held).status == "open"  # skipped, and still reads as closed (it is due)
    assert [s.pk for s in close_due_sessions()] == [held.pk]
    assert close_due_sessions() == []
    assert {row(s).version for s in (held, free)} == {0}


# --- management commands: exit codes as the shell sees them ---------------------------------


@pytest.fixture
def manage(monkeypatch, capsys):
    """manage(*argv) -> (exit status, stdout, stderr), through manage.py's own entry point
    (`ManagementUtility`, which exits 1 on a CommandError and 2 on a usage error)."""
    # run_from_argv closes every connection when it ends (the process is about to exit); the
    # test's transaction must survive it.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)

    def manage(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            ManagementUtility(["manage.py", *argv]).execute()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return status, out, err

    return manage


@pytest.mark.parametrize(
    ("argv", "status", "stderr"),
    [
        (["close_due_sessions", "--batch-size", "0"], 2, "--batch-size: '0' must be at least 1"),
        (["purge_sessions"], 2, "the following arguments are required: --closed-before"),
        (["purge_sessions", "--closed-before", "soon"], 2, "is not a date"),
        (["seed_demo", "--players", "0"], 2, "--players"),
        (["issue_token", "nobody"], 1, "CommandError: No player"),
        (["create_player", "host", "--no-password"], 1, "CommandError:"),
        (["create_player", "newbie", "--no-password", "--permission", "session:everything"], 1, "CommandError:"),
    ],
)
def test_a_failing_command_says_why_and_exits_non_zero(manage, host, argv, status, stderr):
    code, out, err = manage(*argv)

    assert code == status
    assert stderr in err
    assert "Traceback" not in err
    assert Player.objects.count() == 1  # nothing was created


@pytest.mark.parametrize(
    "argv",
    [
        ["close_due_sessions"],
        ["purge_sessions", "--closed-before", "2020-01-01", "--dry-run"],
        ["session_stats", "--json"],
        ["issue_token", "host"],
        ["create_player", "newbie", "--no-password"],
        ["seed_demo", "--players", "2", "--sessions", "3"],
    ],
)
def test_a_command_that_succeeds_exits_0(manage, host, clock, argv):
    code, out, err = manage(*argv)

    assert code == 0, err
    assert out.strip()


# --- seed_demo: `make run` fills the database on first start; bulk writes -------------------


def test_make_run_migrates_seeds_demo_data_then_serves():
    dry = subprocess.run(
        ["make", "-n", "run"], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    commands = [line for line in dry.stdout.splitlines() if "manage.py" in line]

    assert [line.split("manage.py")[1].split()[0] for line in commands] == [
        "migrate",
        "ensure_demo_accounts",
        "seed_demo",
        "runserver",
    ]


def test_seed_demo_as_make_run_calls_it_fills_an_empty_database_once(clock):
    out = StringIO()
    call_command("seed_demo", stdout=out)  # no options: what `make run` runs

    assert "created 40 players" in out.getvalue()
    assert Player.objects.filter(username__startswith=demo.PLAYER_PREFIX).count() == 40
    assert GameSession.objects.count() == 300
    assert set(GameSession.objects.values_list("status", flat=True)) == {"open", "in_progress", "closing", "closed"}

    call_command("seed_demo", stdout=StringIO())  # the next start adds nothing
    assert GameSession.objects.count() == 300


def test_seed_demo_writes_in_bulk_its_queries_do_not_grow_with_the_sessions(clock):
    """100,000 sessions in under a minute needs bulk inserts: 2,000 more sessions (and their
    teams, members, invites, reservations and scores) cost a few dozen queries, not thousands."""
    with CaptureQueriesContext(connection) as small:
        demo.seed_demo(players=5, sessions=100)
    with CaptureQueriesContext(connection) as large:
        demo.seed_demo(players=5, sessions=2100)

    assert GameSession.objects.count() == 2100
    assert Membership.objects.count() > 2000
    assert len(large) < 100, len(large)
    assert len(large) < 3 * len(small)


# --- "the OpenAPI schema describes each route" ----------------------------------------------


def test_the_schema_documents_the_lifecycle_routes_and_members(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]

    def parameters(path, method):
        return {p["name"]: p for p in paths[path][method].get("parameters", [])}

    heartbeat = paths["/api/v1/sessions/{uid}/heartbeat"]["post"]
    assert heartbeat["operationId"] == "sessions_heartbeat"
    assert {"200", "401", "403", "404", "409"} <= set(heartbeat["responses"])
    destroy = paths["/api/v1/sessions/{uid}"]["delete"]
    assert parameters("/api/v1/sessions/{uid}", "delete")["closeAfter"]["in"] == "query"
    assert {"200", "400", "403", "404", "409"} <= set(destroy["responses"])
    for path in ("/api/v1/sessions", "/api/v1/sessions/count"):
        assert "workspaceId" in parameters(path, "get"), path
    document = schema["components"]["schemas"]["Session"]["properties"]
    assert {"workspaceId", "idleTimeout", "closesAt", "closedAt"} <= set(document)
    body = schema["components"]["schemas"]["SessionInputRequest"]["properties"]
    assert {"workspaceId", "idleTimeout"} <= set(body)
    assert body["idleTimeout"]["minimum"] == 0
