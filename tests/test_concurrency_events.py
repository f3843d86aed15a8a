"""Events under concurrency, with real connections on PostgreSQL: racing joins write one
`member.joined` per join that won and none for the refused, with the versions they made; and
sweepers running at once apply each expiry, and record it, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from sessions_app.event_models import EventType, SessionEvent
from sessions_app.models import GameSession, Invite
from sessions_app.services import events, invites, lifecycle
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .threads import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_racing_joins_write_one_event_per_join_that_won(host):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})  # three free places
    players = [PlayerFactory() for _ in range(10)]
    statuses: list[int] = []

    def join(player) -> Callable[[], None]:
        def call() -> None:
            client = APIClient()
            client.force_authenticate(player)
            statuses.append(client.post(f"/api/v1/sessions/{session.uid}/join").status_code)

        return call

    at_once([join(player) for player in players])

    assert sorted(statuses) == [200] * 3 + [409] * 7
    joined = list(SessionEvent.objects.filter(session_uid=session.uid, type="member.joined").order_by("id"))
    assert len(joined) == 3
    # Written under the session's lock: ids in commit order, each with the version it made.
    assert [e.version for e in joined] == [1, 2, 3]
    assert GameSession.objects.get(pk=session.pk).version == 3


def test_sweepers_running_at_once_record_each_expiry_once(host):
    sessions = [session_create(actor=host, values={}) for _ in range(5)]
    soon = timezone.now() + timedelta(seconds=1)
    for session in sessions:
        invites.invite_create(session_id=session.pk, actor=host, player_uid=PlayerFactory().uid, expires_at=soon)
        invites.reservation_create(session_id=session.pk, actor=host, player_uid=PlayerFactory().uid, expires_at=soon)
    later = soon + timedelta(seconds=1)

    at_once([lambda: lifecycle.close_due_sessions(now=later, batch_size=2) for _ in range(4)])
    lifecycle.close_due_sessions(now=later)  # what a skipped (locked) session left, if any

    assert SessionEvent.objects.filter(type="invite.expired").count() == 5
    assert SessionEvent.objects.filter(type="reservation.expired").count() == 5
    assert Invite.objects.filter(state="expired").count() == 5


def test_event_ids_are_handed_out_in_commit_order_across_sessions(host, member):
    """A writer that would draw a higher id waits until the writer holding a lower one has
    committed, so a reader that saw an id never later finds a smaller one appear."""
    first = session_create(actor=host, values={})
    second = session_create(actor=member, values={})
    holding = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow_writer() -> None:
        with transaction.atomic():
            events.record_one(first, EventType.SCORE_SUBMITTED, actor=None, version=None)
            holding.set()
            release.wait(timeout=30)
            order.append("slow committed")

    def quick_writer() -> None:
        holding.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            try:
                events.record_one(second, EventType.SCORE_SUBMITTED, actor=None, version=None)
            except Exception as exc:  # the lock timeout: it had to wait for the slow writer
                order.append(f"quick waited: {type(exc).__name__}")
                raise
        order.append("quick committed")

    def quick_then_release() -> None:
        try:
            quick_writer()
        except Exception:
            pass
        finally:
            release.set()

    at_once([slow_writer, quick_then_release])

    assert order == ["quick waited: OperationalError", "slow committed"]
    # Once the slow writer has committed, the next one goes through, with the higher id.
    later = events.record_one(second, EventType.SCORE_SUBMITTED, actor=None, version=None)
    slow = SessionEvent.objects.filter(session_uid=first.uid, type=EventType.SCORE_SUBMITTED).get()
    assert later.id > slow.id
