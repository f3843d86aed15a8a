"""Joins racing for the last places, with real connections on PostgreSQL: the row lock lets
exactly as many in as there is room for, and `version` counts exactly the joins that won."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.models import GameSession, Membership
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PLAYERS = 20
FREE_PLACES = 5


def race(players, url: str, method: str = "post") -> list[int]:
    """Every player sends one request at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(players))
    statuses: list[int] = [0] * len(players)

    def run(index: int, player) -> None:
        client = APIClient()
        client.force_authenticate(player)
        try:
            barrier.wait(timeout=30)
            statuses[index] = getattr(client, method)(url).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(players)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a join hung"
    return statuses


def test_twenty_players_race_for_five_places(host):
    # 2 teams of 3: the host holds one place, five are free.
    session = session_create(actor=host, values={"num_teams": 2, "team_size": 3})
    players = [PlayerFactory() for _ in range(PLAYERS)]
    before = GameSession.objects.get(pk=session.pk)
    assert before.capacity - Membership.objects.filter(session=session).count() == FREE_PLACES

    statuses = race(players, f"/api/v1/sessions/{session.uid}/join")

    assert sorted(statuses) == [200] * FREE_PLACES + [409] * (PLAYERS - FREE_PLACES)
    after = GameSession.objects.get(pk=session.pk)
    joined = {p.pk for p, s in zip(players, statuses, strict=True) if s == 200}
    members = set(Membership.objects.filter(session=session).values_list("player", flat=True))
    assert members == {host.pk} | joined
    assert after.version == before.version + FREE_PLACES
    # The rendered members agree with the table, and the teams are full and balanced.
    assert len(after.users_doc) == 1 + FREE_PLACES
    assert [len(t["players"]) for t in after.teams_doc] == [3, 3]
    assert sorted(p for t in after.teams_doc for p in t["players"]) == sorted(after.users_doc)


def test_racing_leaves_hand_the_host_over_once_and_count_every_leave(host):
    players = [PlayerFactory() for _ in range(10)]
    session = session_create(actor=host, values={})
    for player in players:
        session_join(session_id=session.pk, actor=player)
    before = GameSession.objects.get(pk=session.pk).version

    statuses = race([host, *players[:5]], f"/api/v1/sessions/{session.uid}/leave")

    after = GameSession.objects.get(pk=session.pk)
    assert statuses == [200] * 6
    assert after.version == before + 6
    assert after.users_doc == [str(p.uid) for p in players[5:]]
    # Whoever the hand-overs passed through, the host ends as a remaining member.
    assert after.host_id in {p.pk for p in players[5:]}
    assert after.status == "open"


def test_the_same_player_joining_twice_at_once_is_one_membership(host):
    player = PlayerFactory()
    session = session_create(actor=host, values={})

    statuses = race([player] * 8, f"/api/v1/sessions/{session.uid}/join")

    assert statuses == [200] * 8
    assert Membership.objects.filter(session=session, player=player).count() == 1
    assert GameSession.objects.get(pk=session.pk).version == 1
