"""Join codes: joining the session a code names, the wrong-code throttle, and rotating a
session's code.

A code stands in for an invitation: whoever holds it may see and join the session, a private
one too, but not for its password, and every other rule of a join applies (`membership.
session_join`, which re-checks the code under the session row's lock, so that a code rotated
meanwhile no longer works). A code that names no live session is a failure, recorded per
player (JoinCodeFailure); after JOIN_CODE_MAX_FAILURES of them within JOIN_CODE_WINDOW
seconds, every join by code of that player is 429 until enough have left the window.

Lock order: a join by code locks the player's own row first (its guesses are judged one at
a time, so a parallel burst is counted as a sequence would be), reads the code (no session
lock), commits its failure if any, then joins in a transaction of its own (the session row
first, as every join). A rotation locks the session row, like every session write.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from players_app.models import Player
from sessions_project.errors import Conflict, NotFound, TooManyRequests

from .. import permissions
from ..codes import JOIN_CODE_ATTEMPTS, is_join_code_collision, new_join_code, normalise_join_code
from ..event_models import EventType
from ..models import LIVE_STATUSES, GameSession, JoinCodeFailure, SessionStatus
from . import documents, events, membership

if TYPE_CHECKING:
    from ..permissions import Actor


def _throttle_check(player_id: int, now: datetime) -> None:
    """429 while the player has JOIN_CODE_MAX_FAILURES wrong codes within the window, with
    Retry-After until the oldest of those that count leaves it."""
    window = timedelta(seconds=settings.JOIN_CODE_WINDOW)
    limit = settings.JOIN_CODE_MAX_FAILURES
    recent = list(
        JoinCodeFailure.objects.filter(player_id=player_id, at__gt=now - window)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return
    retry_after = max(1, math.ceil((recent[limit - 1] + window - now).total_seconds()))
    raise TooManyRequests(
        f"Too many wrong join codes; try again in {retry_after} s.",
        code="join_code_throttled",
        headers={"Retry-After": str(retry_after)},
    )


def _live_session_with_code(code: str | None, now: datetime) -> int | None:
    """The id of the live session (as of now) holding this code, if any. The filter repeats
    the constraint's condition, so the lookup is its partial unique index."""
    if code is None:
        return None
    found = (
        GameSession.objects.filter(join_code=code, status__in=[s.value for s in LIVE_STATUSES])
        .order_by()
        .values_list("pk", "closes_at", "idle_deadline")
        .first()
    )
    if found is None:
        return None
    pk, closes_at, idle_deadline = found
    due = [t for t in (closes_at, idle_deadline) if t is not None]
    return None if due and min(due) <= now else pk


def session_join_by_code(
    *, actor: Actor, code: str, password: str | None = None, team: int | None = None
) -> GameSession:
    """Join the live session a code names (any case), private ones included: the password
    if it has one (unless the caller holds an invite or reservation there), capacity, status
    and the password throttles as in any join. 404 `code_not_found` for a code that names no
    live session (counted as a failure), 429 `join_code_throttled` past the wrong-code limit,
    whatever the code."""
    stored = normalise_join_code(code)
    with transaction.atomic():
        now = timezone.now()
        # The player's row serialises its own guesses (see the module docstring).
        list(Player.objects.select_for_update().filter(pk=actor.id).order_by().values_list("pk", flat=True))
        _throttle_check(actor.id, now)
        session_id = _live_session_with_code(stored, now)
        if session_id is None:
            window = timedelta(seconds=settings.JOIN_CODE_WINDOW)
            JoinCodeFailure.objects.filter(player_id=actor.id, at__lte=now - window).delete()
            JoinCodeFailure.objects.create(player_id=actor.id, at=now)
    if session_id is None or stored is None:
        # Raised once the failure's record is committed (inside, it would be rolled back).
        raise NotFound("No live session has this join code.", code="code_not_found")
    return membership.session_join(session_id=session_id, actor=actor, password=password, team=team, join_code=stored)


def session_rotate_join_code(*, session_id: int, actor: Actor) -> GameSession:
    """Give the session a new join code (its host or session:*); the old one stops working at
    once. A change of the document (members see the code): `version` + 1 and `session.updated`
    with `changes: {"joinCode": null}` (the event log is read by non-members: never the code).
    409 `session_closed` for a closed session."""
    for attempt in range(1, JOIN_CODE_ATTEMPTS + 1):
        try:
            return _rotate(session_id, actor)
        except IntegrityError as error:
            if attempt == JOIN_CODE_ATTEMPTS or not is_join_code_collision(error):
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _rotate(session_id: int, actor: Actor) -> GameSession:
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    permissions.authorize_session_manage(actor, session)
    if session.status == SessionStatus.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    old = session.join_code
    while session.join_code == old:
        session.join_code = new_join_code()
    documents.session_commit(
        session,
        now=now,
        fields={"join_code"},
        render=False,
        logged=lambda: [
            events.event(session, EventType.SESSION_UPDATED, actor=actor, at=now, data={"changes": {"joinCode": None}})
        ],
    )
    documents.vouch(session, documents.locked_host_uid(session))
    return session
