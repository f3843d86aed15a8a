"""Quotas and the join-password throttles (per player and session-wide) under real concurrency
on PostgreSQL: requests racing for the last places of a limit, each on its own connection, never
get past it."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.models import GameSession, Invite, InviteState, JoinPasswordFailure, Membership
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .test_concurrency_capacity import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_creates_racing_for_a_players_last_live_places_stop_at_the_quota(host, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 5
    for _ in range(2):
        session_create(actor=host, values={})  # three places left

    statuses = race([(host, "post", "/api/v1/sessions", {}) for _ in range(10)])

    assert Counter(statuses) == {201: 3, 409: 7}
    assert GameSession.objects.filter(host=host).count() == 5


def test_creates_and_hand_overs_racing_for_one_players_last_place(host, member, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 3
    for _ in range(2):
        session_create(actor=member, values={})  # one place left
    others = PlayerFactory.create_batch(4)
    handed = []
    for other in others:
        session = session_create(actor=other, values={})
        session_join(session_id=session.pk, actor=member)
        handed.append((other, "patch", f"/api/v1/sessions/{session.uid}", {"hostUid": str(member.uid)}))

    statuses = race([*handed, *[(member, "post", "/api/v1/sessions", {}) for _ in range(4)]])

    assert sum(1 for s in statuses if s in (200, 201)) == 1
    assert set(statuses) <= {200, 201, 409}
    assert GameSession.objects.filter(host=member).count() == 3


def test_invites_racing_for_a_sessions_last_places_stop_at_the_quota(host, settings):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 4
    session = session_create(actor=host, values={})
    players = PlayerFactory.create_batch(12)
    url = f"/api/v1/sessions/{session.uid}/invites"

    statuses = race([(host, "post", url, {"player": str(p.uid)}) for p in players])

    assert Counter(statuses) == {201: 4, 409: 8}
    assert Invite.objects.filter(session=session, state=InviteState.PENDING).count() == 4
    assert len(GameSession.objects.get(pk=session.pk).invites_doc) == 4


def test_guesses_from_many_players_at_once_get_exactly_the_session_limit_answered(host, settings):
    settings.JOIN_PASSWORD_SESSION_MAX_FAILURES = 6
    session = session_create(actor=host, values={"password": "open sesame"})
    players = PlayerFactory.create_batch(15)
    url = f"/api/v1/sessions/{session.uid}/join"

    statuses = race([(p, "post", url, {"password": "guess"}) for p in players])

    assert Counter(statuses) == {403: 6, 429: 9}
    assert JoinPasswordFailure.objects.filter(session=session).count() == 6
    assert list(Membership.objects.filter(session=session).values_list("player", flat=True)) == [host.pk]


# --- one player's burst of guesses is throttled like a sequence -------------------------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def failures(session, player) -> int:
    return JoinPasswordFailure.objects.filter(session=session, player=player).count()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_guesses_gets_no_more_than_five_answers(host):
    """Twelve wrong passwords sent at once by one player on its own connections: five are
    answered 403 and recorded, the rest are throttled, as if they had come one by one."""
    session = session_create(actor=host, values={"password": "open sesame"})
    guesser = PlayerFactory()
    barrier = threading.Barrier(12)
    statuses: list[int] = [0] * 12

    def guess(index: int) -> None:
        client = APIClient()
        client.force_authenticate(guesser)
        try:
            barrier.wait(timeout=30)
            statuses[index] = client.post(
                f"{url(session)}/join", {"password": f"guess-{index}"}, format="json"
            ).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(t.is_alive() for t in threads), "a join hung"
    assert Counter(statuses) == {403: 5, 429: 7}
    assert failures(session, guesser) == 5
    assert not Membership.objects.filter(player=guesser).exists()
