"""Fixtures shared by the suite: personas, API clients, sessions made through the services,
and the CI rule that nothing skips (but PostgreSQL-only tests on the SQLite pass)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from players_app.authentication import TokenPlayer, player_claims
from sessions_app.models import PERM_TRUNCATE, SCOPE_ANY, SCOPE_READ_PLAYER_ANY, GameSession
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip is a failure, except a PostgreSQL-only test on SQLite."""
    outcome = yield
    report = outcome.get_result()
    if not IN_CI or not report.skipped:
        return
    from django.conf import settings

    pg_only_on_sqlite = (
        item.get_closest_marker("postgres") is not None and "postgresql" not in settings.DATABASES["default"]["ENGINE"]
    )
    if not pg_only_on_sqlite:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which is not allowed: {report.longrepr}"


# Screenshots the browser tests saved (tests/test_browser.py), named in the summary so the CI
# log says where they are.
SCREENSHOTS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    saved = config.stash.get(SCREENSHOTS, [])
    if saved:
        terminalreporter.write_sep("-", f"browser screenshots in {saved[0].parent}")
        for path in saved:
            terminalreporter.write_line(str(path))


def grant(player, *codenames: str):
    """Give a player permissions by codename (e.g. 'session:*'); returns it reloaded."""
    player.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    from players_app.models import Player

    return Player.objects.get(pk=player.pk)  # fresh instance: no cached permissions


def as_token(player):
    """The caller as production sees it: from its JWT, with no database lookup."""
    return TokenPlayer({"user_id": player.pk, **player_claims(player)})


# Admin: the session change list, and one session's change page.
SESSIONS = "/admin/sessions_app/gamesession/"


def change_url(session) -> str:
    return f"{SESSIONS}{session.pk}/change/"


def row(session) -> GameSession:
    """The session as the database holds it now."""
    return GameSession.objects.get(pk=session.pk)


def version_of(session) -> int:
    return row(session).version


@pytest.fixture
def api():
    """An API client; `api.as_(player)` authenticates it as that player."""

    class Client(APIClient):
        def as_(self, player):
            self.force_authenticate(user=player)
            return self

    return Client()


@pytest.fixture
def host(db):
    return PlayerFactory(username="host")


@pytest.fixture
def member(db):
    return PlayerFactory(username="member")


@pytest.fixture
def outsider(db):
    return PlayerFactory(username="outsider")


@pytest.fixture
def staff(db):
    return PlayerFactory(username="staff", is_staff=True)


@pytest.fixture
def game_server(db):
    return grant(PlayerFactory(username="game-server"), SCOPE_ANY, SCOPE_READ_PLAYER_ANY)


@pytest.fixture
def truncator(db):
    return grant(PlayerFactory(username="truncator"), PERM_TRUNCATE)


@pytest.fixture
def make_session(db):
    """Create a session through the service, as `actor` would over the API."""

    def make(actor, **values):
        return session_create(actor=actor, values=values)

    return make


@pytest.fixture
def session(make_session, host, member):
    """A public open session of host and member."""
    made = make_session(host)
    session_join(session_id=made.pk, actor=member)
    made.refresh_from_db()
    return made


class Clock:
    """A controllable `timezone.now()` for the services: `clock.advance(seconds=61)`."""

    def __init__(self, monkeypatch):
        from datetime import timedelta

        from django.utils import timezone

        self._timedelta = timedelta
        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, **kwargs):
        self.now = self.now + self._timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Freeze time for the services; move it with `clock.advance(seconds=...)`."""
    return Clock(monkeypatch)


@pytest.fixture
def receiver(settings):
    """A webhook receiver on 127.0.0.1 (tests/webhook_receiver.py), with private addresses
    allowed so the service may reach it."""
    from .webhook_receiver import Receiver

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def no_live_places_held():
    """Live connections counted by an earlier test do not count against this one's player."""
    from sessions_app.live.limits import live_connections

    live_connections.reset()
    yield
    live_connections.reset()
