"""Quick joins racing with the same filters, with real connections on PostgreSQL: they fill
the matching sessions there are exactly, then create no more sessions than the rest need."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.event_models import SessionEvent
from sessions_app.models import GameSession, Membership
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CALLERS = 100
SESSIONS = 10
# Connections at once: PostgreSQL's max_connections (100 here) is shared with the test's own
# connection and anything else on the server. Each thread sends its callers' quick joins one
# after another, all threads starting together: 25 quick joins always in flight at once.
THREADS = 25
BODY = {
    "filters": {"data.map": "harbor", "type": "ranked"},
    "create": {"numTeams": 2, "teamSize": 4, "type": "ranked", "data": {"map": "harbor"}},
}


def race(players) -> list[int]:
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = [0] * len(players)

    def run(first: int) -> None:
        try:
            barrier.wait(timeout=30)
            for index in range(first, len(players), THREADS):
                client = APIClient()
                client.force_authenticate(players[index])
                statuses[index] = client.post("/api/v1/sessions/quick-join", BODY, format="json").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(first,)) for first in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a quick join hung"
    return statuses


def test_a_hundred_quick_joins_fill_ten_sessions_then_make_exactly_three(game_server):
    # Ten system sessions of 2 teams of 4, empty: 8 free places each.
    existing = [
        session_create(
            actor=game_server,
            values={
                "num_teams": 2,
                "team_size": 4,
                "type": "ranked",
                "data": {"map": "harbor"},
                "users": [],
                "host_uid": None,
            },
        ).pk
        for _ in range(SESSIONS)
    ]
    players = [PlayerFactory() for _ in range(CALLERS)]

    statuses = race(players)

    assert Counter(statuses) == {200: CALLERS - 3, 201: 3}
    # Every caller is in exactly one session, and only in one of these.
    memberships = Counter(Membership.objects.filter(player__in=players).values_list("player", flat=True))
    assert sorted(memberships) == sorted(p.pk for p in players)
    assert set(memberships.values()) == {1}
    sizes = {session.pk: len(session.users_doc) for session in GameSession.objects.filter(data__map="harbor")}
    assert {pk: sizes[pk] for pk in existing} == dict.fromkeys(existing, 8)  # filled, none over
    created = sorted((size for pk, size in sizes.items() if pk not in existing), reverse=True)
    assert created == [8, 8, 4]
    for session in GameSession.objects.filter(data__map="harbor"):
        # The rendered members agree with the table; teams are balanced within their size.
        assert sorted(session.users_doc) == sorted(
            str(uid) for uid in Membership.objects.filter(session=session).values_list("player__uid", flat=True)
        )
        assert all(len(team["players"]) <= 4 for team in session.teams_doc)
    # Every join and create wrote its events, as ordinary ones do.
    assert SessionEvent.objects.filter(type="member.joined").count() == CALLERS - 3
    assert SessionEvent.objects.filter(type="session.created").count() == SESSIONS + 3
