"""Join passwords: hashing and checking them, and the throttles of wrong guesses (per player
and per session, JOIN_PASSWORD_* settings). `membership.session_join` calls `check_password`
under the session row's lock; sessions' create and update hash with `hash_join_password`."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from sessions_project.errors import Forbidden, TooManyRequests

from ..models import GameSession, JoinPasswordFailure

if TYPE_CHECKING:
    from ..permissions import Actor


def hash_join_password(raw: str) -> str:
    """Django's PBKDF2 with few rounds (JOIN_PASSWORD_ITERATIONS): a few ms per join."""
    if not raw:
        return ""
    hasher = PBKDF2PasswordHasher()
    return hasher.encode(raw, hasher.salt(), iterations=settings.JOIN_PASSWORD_ITERATIONS)


def check_join_password(raw: str | None, encoded: str) -> bool:
    if not raw or not encoded:
        return False
    return PBKDF2PasswordHasher().verify(raw, encoded)


def throttle_check(session: GameSession, player_id: int, now: datetime) -> None:
    """429 while the session has had JOIN_PASSWORD_SESSION_MAX_FAILURES failures within the
    window (whoever made them), or this player JOIN_PASSWORD_MAX_FAILURES of them there.

    One query reads the session's most recent failures, at most the session's limit: failures
    are recorded only while neither limit is reached, so fewer than that many rows means all
    of the window's, and the player's are among them. With the limit reached, the player's
    own throttle lifts no later than the session's unless its failures are among those read."""
    window = timedelta(seconds=settings.JOIN_PASSWORD_WINDOW)
    session_max = settings.JOIN_PASSWORD_SESSION_MAX_FAILURES
    player_max = settings.JOIN_PASSWORD_MAX_FAILURES
    recent = list(
        JoinPasswordFailure.objects.filter(session=session, at__gt=now - window)
        .order_by("-at")
        .values_list("player_id", "at")[:session_max]
    )
    mine = [at for failed_by, at in recent if failed_by == player_id]
    ends = []  # when each throttle that applies lifts
    if len(mine) >= player_max:
        ends.append(mine[player_max - 1] + window)
    if len(recent) >= session_max:
        ends.append(recent[session_max - 1][1] + window)
    if not ends:
        return
    until = max(ends)
    if len(recent) >= session_max:
        detail = "Too many wrong passwords for this session from all players"
    else:
        detail = "Too many wrong passwords for this session"
    retry_after = max(1, math.ceil((until - now).total_seconds()))
    raise TooManyRequests(
        f"{detail}; try again in {retry_after} s.",
        code="join_throttled",
        headers={"Retry-After": str(retry_after)},
    )


def check_password(session: GameSession, actor: Actor, password: str | None, now: datetime) -> Forbidden | None:
    """Throttle first (a throttled join learns nothing about its password), then verify.
    Runs under the join's lock on the session row: one session's checks run one at a time, so
    a burst of concurrent guesses, from one player or many, is counted as a sequence would be,
    not all read as under the limit. Once throttled, a check costs no hashing.
    A failure is recorded and returned, not raised: the join commits the record, then raises
    it (raised inside the transaction, the record would be rolled back with it)."""
    throttle_check(session, actor.id, now)
    if check_join_password(password, session.password_hash):
        return None
    window = timedelta(seconds=settings.JOIN_PASSWORD_WINDOW)
    JoinPasswordFailure.objects.filter(session=session, at__lte=now - window).delete()
    JoinPasswordFailure.objects.create(session=session, player_id=actor.id, at=now)
    if password:
        return Forbidden("Wrong session password.", code="wrong_password")
    return Forbidden("This session needs a password to join.", code="password_required")
