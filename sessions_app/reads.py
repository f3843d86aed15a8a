"""Named reads that compose several queries: a player's sessions view (seed 003), the read
behind GET /players/{uuid}/sessions, and the count of the sessions a caller may see (two
counts in one query). Single-query reads with a name (visibility, effective status, due,
pending, active) are QuerySet methods in models.py.

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

The body changes only by a write (which moves the stamp's `generation`) or when time passes
one of its entries' deadlines. So a built view is remembered on the stamp row: its body (as
JSON text, keys in their order), its ETag, the generation it was built at and its earliest
future deadline. While the generation has not moved and that deadline has not come, the
remembered view is the view: the stamp row alone answers, 304 or 200.

Cost: one query (the stamp) while the remembered view is current; else two whatever the
player holds (the stamp; memberships, invites and reservations in one UNION ALL), and a
third, an UPDATE remembering the view. Rows of live sessions only: a player's history in
closed sessions is never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Count, DateTimeField, F, IntegerField, QuerySet, UUIDField, Value
from django.utils import timezone

from sessions_project.times import iso

from .models import (
    LIVE_STATUSES,
    SCOPE_ANY,
    GameSessionQuerySet,
    Invite,
    InviteState,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    Visibility,
    perm,
    visibility_q,
)

if TYPE_CHECKING:
    from .permissions import Actor

SESSION_COLUMNS = ("session__uid", "session__type", "session__closes_at", "session__idle_deadline")
STAMP_COLUMNS = ("changed_at", "generation", "view_generation", "view_etag", "view_valid_until", "view_body")
# The kinds of entry, in the order the view lists them (memberships, then invites, then places).
MEMBER, INVITE, RESERVATION = 0, 1, 2
ENTRY_COLUMNS = (*SESSION_COLUMNS, "kind", "expires", "inviting", "invite_state", "at", "row")


@dataclass(frozen=True)
class PlayerSessions:
    """The view and its ETag; `body` is None when the remembered ETag answered (not built)."""

    body: dict[str, Any] | None
    etag: str


def _gone_at(now: datetime, *times: datetime | None) -> datetime | None:
    """The earliest of the given deadlines that has passed (the entry left the view then)."""
    passed = [t for t in times if t is not None and t <= now]
    return min(passed) if passed else None


def _entries(player_id: int) -> Any:
    """The player's memberships, pending or expired invites and reservations in live sessions,
    as one UNION ALL of rows shaped alike (ENTRY_COLUMNS); each part's own order is (at, row).
    Expired invites (few: one per live session at most matters) only date their leaving."""
    live = {"player_id": player_id, "session__status__in": LIVE_STATUSES}
    no_time = Value(None, output_field=DateTimeField())

    def shaped(queryset: Any, kind: int, **columns: Any) -> Any:
        defaults = {"expires": no_time, "inviting": Value(None, output_field=UUIDField()), "invite_state": Value("")}
        return (
            queryset.order_by()
            .annotate(kind=Value(kind, output_field=IntegerField()), **{**defaults, **columns}, row=F("id"))
            .values_list(*ENTRY_COLUMNS)
        )

    # Invites first: their columns carry every type, and the first part's decide how the
    # union's values are converted (SQLite returns datetimes as text).
    invites = shaped(
        Invite.objects.filter(state__in=(InviteState.PENDING, InviteState.EXPIRED), **live),
        INVITE,
        expires=F("expires_at"),
        inviting=F("inviting_player__uid"),
        invite_state=F("state"),
        at=F("date_created"),
    )
    memberships = shaped(Membership.objects.filter(**live), MEMBER, at=F("joined_at"))
    reservations = shaped(
        Reservation.objects.filter(**live), RESERVATION, expires=F("expires_at"), at=F("date_created")
    )
    return invites.union(memberships, reservations, all=True)


def player_sessions_view(
    *,
    player_id: int,
    player_uid: Any,
    now: datetime | None = None,
    matches: Callable[[str], bool] | None = None,
) -> PlayerSessions:
    """The view of one player (by id, and uid for its stamp) as of now, with its ETag. With
    `matches` (the caller's If-None-Match test), an ETag it accepts comes without a body
    (None) when the remembered view, still current, has that ETag."""
    now = now or timezone.now()
    # 1: the stamp (when a write last changed this view), and the view it remembers.
    stamp = next(iter(PlayerSessionsStamp.objects.filter(player_uid=player_uid).values_list(*STAMP_COLUMNS)), None)
    if stamp is not None:
        _, generation, view_generation, view_etag, remembered_until, view_body = stamp
        if view_etag and view_generation == generation and (remembered_until is None or now < remembered_until):
            if matches is not None and matches(view_etag):
                return PlayerSessions(body=None, etag=view_etag)
            return PlayerSessions(body=json.loads(view_body), etag=view_etag)
    last_updated = stamp[0] if stamp is not None else None

    groups: dict[str, dict[str, Any]] = {}
    valid_until: datetime | None = None  # the earliest deadline still to come

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
        nonlocal last_updated, valid_until
        for t in deadlines:
            if t is not None and t > now and (valid_until is None or t < valid_until):
                valid_until = t
        gone = _gone_at(now, *deadlines)
        if gone is None:
            return True
        if last_updated is None or gone > last_updated:
            last_updated = gone
        return False

    # 2: every entry; each kind in its own order (memberships by joining, the others by creation).
    rows = sorted(_entries(player_id), key=lambda r: (r[4], r[8], r[9]))
    for session_uid, session_type, closes_at, idle_deadline, kind, expires_at, inviting_uid, state, _, _ in rows:
        if kind == MEMBER:
            if shown(closes_at, idle_deadline):
                group(session_type)["sessionIds"].append(str(session_uid))
        elif kind == INVITE:
            if state == InviteState.EXPIRED:
                shown(closes_at, idle_deadline, expires_at)  # only dates its leaving
            elif shown(closes_at, idle_deadline, expires_at):
                group(session_type)["pendingInvites"][str(session_uid)] = {
                    "sessionId": str(session_uid),
                    "invitingPlayerUuid": str(inviting_uid) if inviting_uid else None,
                }
        elif shown(closes_at, idle_deadline, expires_at):
            group(session_type)["reservedSessions"].append(str(session_uid))

    body = {
        "sessions": {name: groups[name] for name in sorted(groups)},
        "lastUpdatedTimestamp": iso(last_updated),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    etag = f'"{digest[:32]}"'
    if stamp is not None:
        # 3: remember this view at the generation read *before* its rows, so a write landing
        # since (which moved it) already voids what this stores. The WHERE only spares an
        # UPDATE that could never answer, and a newer remembered view.
        PlayerSessionsStamp.objects.filter(player_uid=player_uid, generation=stamp[1]).update(
            view_generation=stamp[1],
            view_etag=etag,
            view_valid_until=valid_until,
            view_body=json.dumps(body, separators=(",", ":")),
        )
    return PlayerSessions(body=body, etag=etag)


def count_visible(sessions: GameSessionQuerySet, user: Actor) -> int:
    """`sessions.visible_to(user).count()`, as one UNION ALL of two COUNT(*)s: the public and
    the private sessions (`visibility` has only those two values, session_visibility_valid, so
    the parts are disjoint and add up to the whole). The public part needs no tie to the
    caller: PostgreSQL counts it by an index-only scan of session_count_public. The private
    part is the few sessions the caller hosts or is tied to (a semi-join by id), or for
    session:* every private one (an index-only scan of session_count_private)."""
    player_id = None if user.has_perm(perm(SCOPE_ANY)) else user.id
    return sum(row["n"] for row in visible_count_parts(sessions, player_id, timezone.now()))


def visible_count_parts(sessions: GameSessionQuerySet, player_id: int | None, now: datetime) -> QuerySet[Any, Any]:
    """The two counts of count_visible (rows of `n`), for `player_id` (None: every session)."""
    parts = [sessions.filter(visibility=Visibility.PUBLIC), sessions.filter(visibility=Visibility.PRIVATE)]
    if player_id is not None:
        parts[1] = parts[1].filter(visibility_q(player_id, now, public=False))
    # values() of a constant, then Count: a COUNT(*) without GROUP BY (Django leaves constants
    # out of it), so each part is exactly one row.
    public, private = (q.order_by().values(all=Value(1)).annotate(n=Count("*")).values("n") for q in parts)
    return public.union(private, all=True)
