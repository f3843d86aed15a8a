"""The developers' management commands: output, database state and exit codes.

`call_command` raises CommandError where the shell would exit non-zero (argparse usage
errors included)."""

from __future__ import annotations

import copy
import json
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import AccessToken

from players_app.models import Player
from players_app.services import PLAYERS_GROUP
from sessions_app import demo
from sessions_app.models import (
    Chart,
    GameSession,
    Invite,
    InviteState,
    JoinPasswordFailure,
    Membership,
    Reservation,
    Score,
    SessionStatus,
    Song,
    Team,
)
from sessions_app.reads import player_sessions_view
from sessions_app.services.documents import render_documents
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import CLOSE_AFTER_MAX, session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update
from sessions_project.times import iso

from .factories import PlayerFactory, ScoreFactory

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    """Run a command; its stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- close_due_sessions ---------------------------------------------------------------------


def test_close_due_sessions_prints_what_it_closed_and_is_idempotent(host, make_session, clock):
    closing = make_session(host, idle_timeout=0)
    session_close(session_id=closing.pk, actor=host, close_after=30)
    closing.refresh_from_db()
    idle = make_session(host, idle_timeout=60)
    live = make_session(host, idle_timeout=0)
    clock.advance(seconds=61)

    first, _ = run("close_due_sessions")
    second, _ = run("close_due_sessions")

    assert f"closed {closing.uid} at {iso(closing.closes_at)} (closesAt passed)" in first
    assert f"closed {idle.uid} at {iso(idle.idle_deadline)} (idle)" in first
    assert "Closed 2 session(s)." in first
    assert str(live.uid) not in first
    assert second.strip() == "No session was due."
    for session in (closing, idle):
        after = GameSession.objects.get(pk=session.pk)
        assert (after.status, after.version) == ("closed", session.version)
    assert GameSession.objects.get(pk=live.pk).status == "open"


def test_close_due_sessions_reports_progress_batch_by_batch(host, make_session, clock):
    sessions = [make_session(host, idle_timeout=10) for _ in range(5)]
    clock.advance(seconds=11)

    out, _ = run("close_due_sessions", "--batch-size", "2")

    assert "… 2 closed so far" in out
    assert "… 4 closed so far" in out
    assert "Closed 5 session(s)." in out
    assert GameSession.objects.filter(pk__in=[s.pk for s in sessions], status="closed").count() == 5


def test_close_due_sessions_is_quiet_at_verbosity_0(host, make_session, clock):
    make_session(host, idle_timeout=10)
    clock.advance(seconds=11)

    out, _ = run("close_due_sessions", verbosity=0)

    assert out == ""
    assert GameSession.objects.get().status == "closed"


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_close_due_sessions_refuses_a_bad_batch_size(value):
    with pytest.raises(CommandError, match="batch-size"):
        run("close_due_sessions", "--batch-size", value)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_close_due_sessions_run_concurrently_closes_each_session_exactly_once(make_session, clock, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0  # one host makes the 120 sessions: no quota here
    host = PlayerFactory(username="sweep-host")
    expected = {}
    for index in range(120):
        session = make_session(host, idle_timeout=60 if index % 2 else 0)
        if index % 2 == 0:
            session = session_close(session_id=session.pk, actor=host, close_after=30)
        expected[str(session.uid)] = session.version
    clock.advance(seconds=61)
    copies = 4
    barrier = threading.Barrier(copies)
    outputs: list[str] = [""] * copies
    errors: list[BaseException] = []

    def sweeper(slot: int) -> None:
        try:
            barrier.wait()
            outputs[slot] = run("close_due_sessions", "--batch-size", "3")[0]
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper, args=(slot,)) for slot in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    closed = [line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("closed ")]
    assert len(closed) == len(expected)  # nobody closed a session twice...
    assert set(closed) == set(expected)  # ...and every due session was closed
    assert sum(1 for out in outputs if "Closed" in out) >= 2  # the copies really shared the work
    rows = GameSession.objects.filter(uid__in=expected)
    assert {str(uid): v for uid, v in rows.values_list("uid", "version")} == expected
    assert set(rows.values_list("status", flat=True)) == {"closed"}
    assert not rows.filter(closed_at__isnull=True).exists()


# --- purge_sessions -------------------------------------------------------------------------


@pytest.fixture
def history(host, member, outsider, make_session, clock):
    """Sessions closed in every way around a cutoff, with rows hanging on them.

    t0: `recorded` closed by the host (with a member, teams, a score, an invite, a reservation
    and a join password failure); t0+10 min: `grace` and `idle` read as closed, unswept;
    cutoff at t0+1 h; then `late` closed after it, `live` open, `ahead` closing until later."""
    t0 = clock.now
    recorded = make_session(host, num_teams=2, team_size=2, idle_timeout=0)
    session_join(session_id=recorded.pk, actor=member)
    invite_create(session_id=recorded.pk, actor=host, player_uid=outsider.uid)
    reservation_create(session_id=recorded.pk, actor=host, player_uid=PlayerFactory().uid)
    ScoreFactory(session=recorded, player=member)
    JoinPasswordFailure.objects.create(session=recorded, player=outsider)
    session_update(session_id=recorded.pk, actor=host, values={"status": "closed"})
    grace = make_session(host, idle_timeout=0)
    session_close(session_id=grace.pk, actor=host, close_after=600)
    idle = make_session(host, idle_timeout=600)
    clock.advance(seconds=3600)
    cutoff = clock.now
    clock.advance(seconds=60)
    late = make_session(host, idle_timeout=0)
    session_close(session_id=late.pk, actor=host, close_after=0)
    live = make_session(host, idle_timeout=0)
    ahead = make_session(host, idle_timeout=0)
    session_close(session_id=ahead.pk, actor=host, close_after=3600)
    return {
        "t0": t0,
        "cutoff": cutoff,
        "purged": [recorded, grace, idle],
        "kept": [late, live, ahead],
        "recorded": recorded,
    }


def test_purge_sessions_dry_run_counts_and_deletes_nothing(history):
    before = GameSession.objects.count()

    out, _ = run("purge_sessions", "--closed-before", iso(history["cutoff"]), "--dry-run")

    assert f"Dry run: would delete 3 session(s) closed before {iso(history['cutoff'])}:" in out
    for line in ("sessions: 3", "teams: 2", "memberships: 4", "invites: 1", "reservations: 1", "scores: 1"):
        assert f"  {line}\n" in out
    assert "join password failures: 1" in out
    assert GameSession.objects.count() == before


def test_purge_sessions_deletes_what_closed_before_the_date_and_what_hangs_on_it(history):
    recorded = history["recorded"]

    out, _ = run("purge_sessions", "--closed-before", iso(history["cutoff"]))

    assert "Deleted 3 session(s)" in out
    for line in ("sessions: 3", "teams: 2", "memberships: 4", "invites: 1", "reservations: 1", "scores: 1"):
        assert f"  {line}\n" in out
    assert set(GameSession.objects.values_list("pk", flat=True)) == {s.pk for s in history["kept"]}
    for model in (Team, Membership, Invite, Reservation, Score, JoinPasswordFailure):
        assert not model.objects.filter(session_id=recorded.pk).exists()
    assert Chart.objects.count() == 1  # the catalog stays
    # What was kept is whole: its members are still there.
    assert Membership.objects.filter(session__in=history["kept"]).count() == 3


def test_purge_keeps_players_views_dated(host, make_session, clock):
    """A due session not yet swept dates its players' view changes from its rows; purging
    those rows must not move a view's lastUpdatedTimestamp back."""
    player = PlayerFactory()
    session = make_session(host, idle_timeout=0)
    session_join(session_id=session.pk, actor=player)
    session_close(session_id=session.pk, actor=host, close_after=600)
    clock.advance(seconds=3600)
    before = player_sessions_view(player_id=player.pk, player_uid=player.uid).body

    run("purge_sessions", "--closed-before", iso(clock.now))

    assert not GameSession.objects.filter(pk=session.pk).exists()
    assert before["lastUpdatedTimestamp"] == iso(clock.now - timedelta(seconds=3000))  # the closesAt
    assert player_sessions_view(player_id=player.pk, player_uid=player.uid).body == before


def test_purge_sessions_works_in_batches_and_reports_progress(history):
    out, _ = run("purge_sessions", "--closed-before", iso(history["cutoff"]), "--batch-size", "1")

    assert [line for line in out.splitlines() if line.startswith("…")] == [
        "… 1 sessions deleted so far",
        "… 2 sessions deleted so far",
        "… 3 sessions deleted so far",
    ]
    assert GameSession.objects.count() == 3


def test_purge_sessions_never_touches_a_session_still_live(history, clock):
    # A cutoff far ahead purges what is closed by now, not what will close later.
    out, _ = run("purge_sessions", "--closed-before", "2999-01-01")

    assert "Deleted 4 session(s)" in out  # the three, and `late`
    assert set(GameSession.objects.values_list("status", flat=True)) == {"open", "closing"}


def test_purge_sessions_reports_when_there_is_nothing_to_purge(history):
    out, _ = run("purge_sessions", "--closed-before", iso(history["t0"] - timedelta(days=1)))

    assert "No session closed before" in out
    assert GameSession.objects.count() == 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T12:30:00Z", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
        ("2026-01-31T12:30:00", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
        ("2026-01-31T14:30:00+02:00", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_purge_sessions_reads_dates_and_times(raw, expected):
    out, _ = run("purge_sessions", "--closed-before", raw, "--dry-run")

    assert f"closed before {iso(expected)}" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--closed-before", "yesterday"],
        ["--closed-before", "2026-02-30"],
        ["--closed-before", "2026-01-01", "--batch-size", "0"],
    ],
)
def test_purge_sessions_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        run("purge_sessions", *args)


# --- create_player and issue_token ----------------------------------------------------------


def test_create_player_with_password_staff_and_scope():
    out, _ = run(
        "create_player", "server-1", "--password", "a-long-pass-phrase", "--staff", "--permission", "session:*"
    )

    player = Player.objects.get(username="server-1")
    assert f"Created player server-1 (uid {player.uid}) with staff, session:*." in out
    assert player.check_password("a-long-pass-phrase")
    assert (player.is_staff, player.is_superuser) == (True, False)
    assert player.has_perm("sessions_app.session:*")
    assert list(player.groups.values_list("name", flat=True)) == [PLAYERS_GROUP]


def test_create_player_superuser_is_staff_and_no_password_is_unusable():
    out, _ = run("create_player", "root", "--superuser", "--no-password")

    player = Player.objects.get(username="root")
    assert (player.is_staff, player.is_superuser, player.has_usable_password()) == (True, True, False)
    assert "issue_token root" in out


def test_create_player_prompts_for_the_password(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-pass-phrase-9")

    run("create_player", "typist")

    assert Player.objects.get(username="typist").check_password("typed-pass-phrase-9")


def test_create_player_refuses_mismatched_prompted_passwords(monkeypatch):
    answers = iter(["typed-pass-phrase-9", "another-pass-phrase"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match="do not match"):
        run("create_player", "typist")
    assert not Player.objects.filter(username="typist").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["host", "--no-password"], "already exists"),
        (["HOST", "--no-password"], "already exists"),
        (["bad name!", "--no-password"], "Invalid username"),
        (["newbie", "--no-password", "--permission", "session:everything"], "The API scopes are: "),
        (["newbie", "--password", "123"], "Password refused"),
        (["newbie"], "use --password or --no-password"),  # no terminal under pytest
        (["newbie", "--password", "a-long-pass-phrase", "--no-password"], "not allowed with"),
    ],
)
def test_create_player_refuses(host, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_player", *args)
    assert not Player.objects.filter(username="newbie").exists()
    assert Player.objects.count() == 1


def test_issue_token_prints_a_token_that_the_api_accepts(api, game_server):
    out, err = run("issue_token", "game-server")

    token = out.strip()
    assert "\n" not in token
    assert "Authorization: jwt <token>" in err
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token}")
    me = api.get("/api/v1/players/me")
    assert me.status_code == 200
    assert me.json()["username"] == "game-server"
    assert "session:*" in me.json()["scopes"]


def test_issue_token_with_a_lifetime_and_a_refresh_token(api, host):
    out, _ = run("issue_token", "host", "--lifetime", "60", "--refresh")

    access, refresh = out.split()
    claims = AccessToken(access)
    assert claims["exp"] - claims["iat"] == 60
    renewed = api.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert renewed.status_code == 200


@pytest.mark.parametrize(("args", "message"), [(["nobody"], "No player"), (["host", "--lifetime", "0"], "lifetime")])
def test_issue_token_refuses(host, args, message):
    with pytest.raises(CommandError, match=message):
        run("issue_token", *args)


def test_issue_token_refuses_an_inactive_player(host):
    host.is_active = False
    host.save()

    with pytest.raises(CommandError, match="inactive"):
        run("issue_token", "host")


# --- seed_demo ------------------------------------------------------------------------------

ROW_MODELS = (Player, Song, Chart, GameSession, Team, Membership, Invite, Reservation, Score)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in ROW_MODELS}


@pytest.fixture
def seeded(clock):
    out, _ = run("seed_demo", "--players", "12", "--sessions", "60")
    return out


def test_seed_demo_makes_every_kind_of_session(seeded):
    sessions = GameSession.objects.all()

    assert "created 12 players, 24 songs, 96 charts, 60 sessions" in seeded
    assert Player.objects.filter(username__startswith="demo-player-").count() == 12
    assert Player.objects.get(username=demo.GAME_SERVER_USERNAME).has_perm("sessions_app.session:*")
    assert set(sessions.values_list("status", flat=True)) == {s.value for s in SessionStatus}
    assert set(sessions.values_list("visibility", flat=True)) == {"public", "private"}
    assert sessions.filter(host__isnull=True).exists()  # system sessions
    assert sessions.exclude(password_hash="").exists()
    assert sessions.exclude(workspace_id="").exists()
    assert sessions.filter(num_teams__gt=0).exists()
    assert sessions.filter(num_teams=0).exists()
    assert Invite.objects.filter(state=InviteState.PENDING).exists()
    assert Invite.objects.filter(state=InviteState.ACCEPTED).exists()
    assert Reservation.objects.exists()
    assert Score.objects.exists()
    assert not Score.objects.filter(session__status="open").exists()


def test_seed_demo_renders_documents_as_the_services_do(seeded):
    """The rendered columns of every seeded session equal what session_commit would write."""
    for session in GameSession.objects.all():
        rendered = copy.copy(session)
        render_documents(rendered)
        assert (session.users_doc, session.teams_doc, session.invites_doc) == (
            rendered.users_doc,
            rendered.teams_doc,
            rendered.invites_doc,
        ), session.uid


def test_seed_demo_sessions_are_consistent(seeded, clock):
    now = clock.now
    for session in GameSession.objects.all():
        members = Membership.objects.filter(session=session).count()
        reserved = Reservation.objects.active(now).filter(session=session).count()
        if session.capacity is not None:
            assert members + reserved <= session.capacity, session.uid
        if session.host_id is not None and session.status != "closed":
            assert Membership.objects.filter(session=session, player_id=session.host_id).exists()
        assert session.date_created <= session.date_modified <= now
        if session.status == "closed":
            assert session.closed_at is not None
            assert session.closed_at <= now
        if session.status == "closing":
            assert now < session.closes_at <= now + timedelta(seconds=CLOSE_AFTER_MAX)


def test_seed_demo_live_sessions_do_not_go_idle(seeded, clock):
    live = GameSession.objects.filter(status__in=["open", "in_progress"])
    assert set(live.values_list("idle_timeout", flat=True)) == {0}
    clock.advance(days=365)

    assert not GameSession.objects.due(clock.now).filter(status__in=["open", "in_progress"]).exists()


def test_seed_demo_sessions_work_with_the_services(seeded, api):
    """A demo session takes a join like any other: the re-rendered document adds the player."""
    newcomer = PlayerFactory()
    session = next(
        s
        for s in GameSession.objects.filter(status="open", visibility="public", password_hash="", num_teams=0)
        if s.host_id is not None
    )

    response = api.as_(newcomer).post(f"/api/v1/sessions/{session.uid}/join", format="json")

    assert response.status_code == 200
    assert response.json()["users"] == [*session.users_doc, str(newcomer.uid)]
    assert response.json()["version"] == session.version + 1


def test_seed_demo_dates_the_players_views(seeded, clock):
    """Each demo player's sessions view (seed 003) is dated no earlier than the entries it shows."""
    for player in Player.objects.filter(username__startswith="demo-player-"):
        body = player_sessions_view(player_id=player.pk, player_uid=player.uid).body
        joined = Membership.objects.filter(player=player).values_list("joined_at", flat=True)
        assert body["lastUpdatedTimestamp"] is not None, player.username
        assert body["lastUpdatedTimestamp"] >= iso(max(joined)), player.username


def test_seed_demo_is_idempotent(seeded):
    before = row_counts()

    again, _ = run("seed_demo", "--players", "12", "--sessions", "60")

    assert "12 players and 60 sessions were already there" in again
    assert row_counts() == before


def test_seed_demo_adds_only_what_is_missing(seeded):
    before = row_counts()

    out, _ = run("seed_demo", "--players", "15", "--sessions", "70")

    assert "created 3 players, 0 songs, 0 charts, 10 sessions" in out
    after = row_counts()
    assert (after["Player"], after["GameSession"]) == (before["Player"] + 3, before["GameSession"] + 10)
    assert GameSession.objects.filter(uid__in=[demo.session_uid(n) for n in range(70)]).count() == 70


def test_seed_demo_reports_progress_on_long_work(clock):
    out, _ = run("seed_demo", "--players", "3", "--sessions", str(demo.CHUNK + 1))

    assert f"… {demo.CHUNK}/{demo.CHUNK + 1} sessions checked" in out
    assert GameSession.objects.count() == demo.CHUNK + 1


@pytest.mark.parametrize("args", [["--players", "0"], ["--sessions", "-1"], ["--sessions", "lots"]])
def test_seed_demo_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        run("seed_demo", *args)
    assert not GameSession.objects.exists()


# --- session_stats --------------------------------------------------------------------------


def test_session_stats_counts_by_effective_status_type_and_visibility(host, member, outsider, make_session, clock):
    half_full = make_session(host, num_teams=2, team_size=2, type="ranked", idle_timeout=0)
    session_join(session_id=half_full.pk, actor=member)
    busy = make_session(member, num_teams=1, team_size=2, idle_timeout=0, visibility="private")
    session_update(session_id=busy.pk, actor=member, values={"status": "in_progress"})
    unlimited = make_session(outsider, idle_timeout=0)
    due = make_session(host, type="ranked", idle_timeout=0)
    session_close(session_id=due.pk, actor=host, close_after=30)
    clock.advance(seconds=31)  # `due` reads as closed though the sweeper has not run

    out, _ = run("session_stats", "--json")
    table, _ = run("session_stats")

    stats = json.loads(out)
    assert stats["by_status"] == {"open": 2, "in_progress": 1, "closing": 0, "closed": 1}
    assert stats["by_type"] == {"default": 2, "ranked": 2}
    assert stats["by_visibility"] == {"private": 1, "public": 3}
    assert (stats["sessions"], stats["live_sessions"]) == (4, 3)
    assert stats["members_in_live_sessions"] == 4  # host+member, member, outsider
    assert stats["players_in_live_sessions"] == 3
    assert stats["sessions_with_capacity"] == 2
    assert stats["average_fill"] == pytest.approx((2 / 4 + 1 / 2) / 2)
    assert unlimited.capacity is None
    assert "Sessions: 4" in table
    assert "average fill" in table
    assert "50.0%" in table


def test_session_stats_on_an_empty_database():
    out, _ = run("session_stats")

    assert "Sessions: 0" in out
    assert "n/a" in out


def test_every_command_has_help():
    for name in ("close_due_sessions", "purge_sessions", "seed_demo", "session_stats", "create_player", "issue_token"):
        with pytest.raises(SystemExit) as exit_:
            run(name, "--help")
        assert exit_.value.code == 0


# --- exit codes as the shell sees them --------------------------------------------------------


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


# --- seed_demo as `make run` calls it; bulk writes --------------------------------------------


def test_make_run_migrates_seeds_demo_data_then_serves():
    dry = subprocess.run(
        ["make", "-n", "run"], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    commands = [line for line in dry.stdout.splitlines() if "manage.py" in line]
    serving = [line for line in dry.stdout.splitlines() if "uvicorn" in line]

    assert [line.split("manage.py")[1].split()[0] for line in commands] == [
        "migrate",
        "ensure_demo_accounts",
        "seed_demo",
    ]
    # Then one ASGI process serves HTTP and the live routes (WebSocket, SSE) alike.
    assert len(serving) == 1
    assert "sessions_project.asgi:application" in serving[0]
    assert dry.stdout.index("seed_demo") < dry.stdout.index("uvicorn")


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


def test_seed_demo_gives_every_session_a_distinct_join_code_even_when_draws_repeat(monkeypatch, clock):
    draws = iter(["AAAAAA", "AAAAAA", "BBBBBB", "AAAAAA", "BBBBBB", *(f"C{n:05d}" for n in range(10_000))])
    monkeypatch.setattr(demo, "new_join_code", lambda: next(draws))

    run("seed_demo", "--players", "3", "--sessions", "20")

    codes = list(GameSession.objects.values_list("join_code", flat=True))
    assert len(codes) == 20
    assert len(set(codes)) == 20  # the repeated draws were drawn again
    assert {"AAAAAA", "BBBBBB"} <= set(codes)
