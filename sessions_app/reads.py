"""Named reads that compose several queries: a player's sessions view (seed 003), the read
behind GET /players/{uuid}/sessions. Single-query reads with a name (visibility, effective
status, due, pending, active) are QuerySet methods in models.py.

The view shows the *live* sessions (open, in progress or closing) the player is a member of,
is invited to (pending, unexpired) or holds an active reservation in, grouped by `type`.
A closed session is in no view: nobody is "in" it any more, an invite to it cannot be
accepted and a place in it cannot be used. That includes a session whose closesAt or idle
deadline has passed before the sweeper recorded the close (it reads as closed everywhere).

`lastUpdatedTimestamp` is when what the view shows last changed: the player's stamp, which
every write that changes the view raises (`services.documents.touch_player_views`), or, if later, the
moment an entry left the view by time alone (an invite or reservation expiring, a session
passing its deadline) that no write has recorded yet. The ETag is a digest of the whole
body, so it changes exactly when the body does.

Cost: four queries whatever the player holds (stamp, memberships, invites, reservations).
Rows of live sessions only: a player's history in closed sessions is never read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from sessions_project.times import iso

from .models import LIVE_STATUSES, Invite, InviteState, Membership, PlayerSessionsStamp, Reservation

SESSION_COLUMNS = ("session__uid", "session__type", "session__closes_at", "session__idle_deadline")


@dataclass(frozen=True)
class PlayerSessions:
    body: dict[str, Any]
    etag: str


def _gone_at(now: datetime, *times: datetime | None) -> datetime | None:
    """The earliest of the given deadlines that has passed (the entry left the view then)."""
    passed = [t for t in times if t is not None and t <= now]
    return min(passed) if passed else None


def player_sessions_view(*, player_id: int, player_uid: Any, now: datetime | None = None) -> PlayerSessions:
    """The view of one player (by id, and uid for its stamp) as of now, with its ETag."""
    now = now or timezone.now()
    # 1: the stamp (when a write last changed this view).
    last_updated = (
        PlayerSessionsStamp.objects.filter(player_uid=player_uid).values_list("changed_at", flat=True).first()
    )
    live = {"player_id": player_id, "session__status__in": LIVE_STATUSES}
    # 2: memberships, in joining order.
    memberships = Membership.objects.filter(**live).order_by("joined_at", "id").values_list(*SESSION_COLUMNS)
    # 3: pending invites (some may have expired by time), and expired ones: in a live session
    # their expiresAt is when they left the view (few: one per live session at most matters).
    invites = (
        Invite.objects.filter(state__in=(InviteState.PENDING, InviteState.EXPIRED), **live)
        .order_by("date_created", "id")
        .values_list(*SESSION_COLUMNS, "expires_at", "inviting_player__uid", "state")
    )
    # 4: reservations (some may have expired and not yet been swept).
    reservations = (
        Reservation.objects.filter(**live).order_by("date_created", "id").values_list(*SESSION_COLUMNS, "expires_at")
    )

    groups: dict[str, dict[str, Any]] = {}

    def group(session_type: str) -> dict[str, Any]:
        if session_type not in groups:
            groups[session_type] = {
                "type": session_type,
                "sessionIds": [],
                "pendingInvites": {},
                "reservedSessions": [],
            }
        return groups[session_type]

    def shown(*deadlines: datetime | None) -> bool:
        nonlocal last_updated
        gone = _gone_at(now, *deadlines)
        if gone is None:
            return True
        if last_updated is None or gone > last_updated:
            last_updated = gone
        return False

    for session_uid, session_type, closes_at, idle_deadline in memberships:
        if shown(closes_at, idle_deadline):
            group(session_type)["sessionIds"].append(str(session_uid))
    for session_uid, session_type, closes_at, idle_deadline, expires_at, inviting_uid, state in invites:
        if state == InviteState.EXPIRED:
            shown(closes_at, idle_deadline, expires_at)  # only dates its leaving
        elif shown(closes_at, idle_deadline, expires_at):
            group(session_type)["pendingInvites"][str(session_uid)] = {
                "sessionId": str(session_uid),
                "invitingPlayerUuid": str(inviting_uid) if inviting_uid else None,
            }
    for session_uid, session_type, closes_at, idle_deadline, expires_at in reservations:
        if shown(closes_at, idle_deadline, expires_at):
            group(session_type)["reservedSessions"].append(str(session_uid))

    body = {
        "sessions": {name: groups[name] for name in sorted(groups)},
        "lastUpdatedTimestamp": iso(last_updated),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return PlayerSessions(body=body, etag=f'"{digest[:32]}"')
