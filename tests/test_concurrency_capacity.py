"""Invites accepted, reservations made and joins, racing for the last places of a session on
PostgreSQL with real connections: the session's row lock keeps members plus active
reservations within capacity, and a reserved place is never taken by someone else."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.models import GameSession, Invite, InviteState, Membership, Reservation
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(requests: list[tuple[object, str, str, dict | None]]) -> list[int]:
    """Each (player, method, url, body) is sent at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = [0] * len(requests)

    def run(index: int, player, method: str, url: str, body) -> None:
        client = APIClient()
        client.force_authenticate(player)
        try:
            barrier.wait(timeout=30)
            statuses[index] = getattr(client, method)(url, body, format="json").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return statuses


def taken(session) -> int:
    return (
        Membership.objects.filter(session=session).count()
        + Reservation.objects.active().filter(session=session).count()
    )


def test_invites_accepted_at_once_fill_exactly_the_free_places(host):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})  # 3 free
    players = PlayerFactory.create_batch(10)
    invites = [invite_create(session_id=session.pk, actor=host, player_uid=p.uid) for p in players]
    before = GameSession.objects.get(pk=session.pk).version

    statuses = race(
        [(p, "post", f"/api/v1/invites/{i.pk}/accept", None) for p, i in zip(players, invites, strict=True)]
    )

    assert Counter(statuses) == {200: 3, 409: 7}
    winners = {p.pk for p, s in zip(players, statuses, strict=True) if s == 200}
    assert set(Membership.objects.filter(session=session).values_list("player", flat=True)) == {host.pk} | winners
    assert set(Invite.objects.filter(state=InviteState.ACCEPTED).values_list("player", flat=True)) == winners
    assert Invite.objects.filter(state=InviteState.PENDING).count() == 7  # the losers may try again later
    after = GameSession.objects.get(pk=session.pk)
    assert after.version == before + 3
    assert len(after.users_doc) == 4


def test_reservations_made_at_once_never_exceed_capacity(host, game_server):
    session = session_create(actor=host, values={"num_teams": 2, "team_size": 3})  # 5 free
    players = PlayerFactory.create_batch(12)
    url = f"/api/v1/sessions/{session.uid}/reservations"
    before = GameSession.objects.get(pk=session.pk).version

    statuses = race([(game_server, "post", url, {"player": str(p.uid)}) for p in players])

    assert Counter(statuses) == {201: 5, 409: 7}
    assert Reservation.objects.filter(session=session).count() == 5
    assert taken(session) == 6
    assert GameSession.objects.get(pk=session.pk).version == before  # reservations never move it


def test_reservations_joins_and_accepts_racing_for_the_last_places(host, game_server):
    """Four places free; eight reservations, eight joins and eight invite accepts all at once.
    Whatever wins, members plus active reservations end exactly at capacity."""
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 5})
    reserved_for = PlayerFactory.create_batch(8)
    joiners = PlayerFactory.create_batch(8)
    invited = PlayerFactory.create_batch(8)
    invites = [invite_create(session_id=session.pk, actor=host, player_uid=p.uid) for p in invited]
    base = f"/api/v1/sessions/{session.uid}"
    requests = [
        *[(game_server, "post", f"{base}/reservations", {"player": str(p.uid)}) for p in reserved_for],
        *[(p, "post", f"{base}/join", None) for p in joiners],
        *[(p, "post", f"/api/v1/invites/{i.pk}/accept", None) for p, i in zip(invited, invites, strict=True)],
    ]

    statuses = race(requests)

    assert sum(1 for s in statuses if s in (200, 201)) == 4
    assert set(statuses) <= {200, 201, 409}
    assert taken(session) == 5
    members = Membership.objects.filter(session=session).count()
    assert GameSession.objects.get(pk=session.pk).users_doc.__len__() == members


def test_reserved_players_always_get_in_while_others_race_for_what_is_left(host, game_server):
    session = session_create(actor=host, values={"num_teams": 2, "team_size": 3})  # 5 free
    reserved = PlayerFactory.create_batch(3)
    for player in reserved:
        reservation_create(session_id=session.pk, actor=game_server, player_uid=player.uid)
    others = PlayerFactory.create_batch(10)
    url = f"/api/v1/sessions/{session.uid}/join"

    statuses = race([(p, "post", url, None) for p in [*reserved, *others]])

    assert statuses[:3] == [200, 200, 200]
    assert Counter(statuses[3:]) == {200: 2, 409: 8}
    after = GameSession.objects.get(pk=session.pk)
    assert len(after.users_doc) == 6
    assert [len(t["players"]) for t in after.teams_doc] == [3, 3]
    assert not Reservation.objects.exists()


def test_writes_on_sessions_sharing_players_never_deadlock_on_their_view_stamps(game_server):
    """Closing a session or changing its type raises the view stamp of every player in it;
    sessions sharing players, written at once, must each get through (no deadlock, no 503)."""
    players = PlayerFactory.create_batch(6)
    sessions = [
        session_create(actor=game_server, values={"users": [p.uid for p in players[i % 3 :]]}) for i in range(12)
    ]
    requests = [
        (game_server, "delete", f"/api/v1/sessions/{s.uid}?closeAfter=0", None)
        if i % 2
        else (game_server, "patch", f"/api/v1/sessions/{s.uid}", {"type": f"t{i}"})
        for i, s in enumerate(sessions)
    ]

    statuses = race(requests)

    assert statuses == [200] * len(sessions)
    assert GameSession.objects.filter(status="closed").count() == 6
