"""Invites (create, accept, decline, revoke, and the `invited` list of create and update)
and reservations (create, cancel), with the pending-invite quota of a session
(QUOTA_PENDING_INVITES_PER_SESSION; 0: none, session:* exempt).

Lock order: the session row first (`documents.lock_session`), then the invite row (an
invite is looked up unlocked, its session locked, then the invite locked) or the session's
reservations, and the players' view stamps (`documents.touch_player_views`, in uid order).
Accepting an invite joins through `membership.session_join` inside the same transaction,
which locks the same session row again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from players_app.models import Player
from sessions_project.errors import Conflict, InvalidInput, NotFound, field_error
from sessions_project.times import iso

from .. import permissions, places
from ..event_models import EventType, SessionEvent
from ..models import (
    GameSession,
    Invite,
    InviteState,
    Membership,
    Reservation,
    SessionStatus,
)
from . import documents, events, membership

if TYPE_CHECKING:
    from ..permissions import Actor

S = SessionStatus


def check_pending_invites_quota(pending: int) -> None:
    """409 `quota_exceeded` if a session would hold more than QUOTA_PENDING_INVITES_PER_SESSION
    pending invites (callers count under the session's row lock)."""
    limit = settings.QUOTA_PENDING_INVITES_PER_SESSION
    if limit and pending > limit:
        raise Conflict(f"A session may hold at most {limit} pending invites.", code="quota_exceeded")


def _expire_stale_invites(session: GameSession, now: datetime) -> None:
    """Free the one-pending-invite slot of invites past expiresAt (see Invite's constraint)."""
    documents.mark_expired_invites(Invite.objects.filter(session=session), now)


def _invite(
    session: GameSession,
    actor: Actor,
    player: Player,
    expires_at: datetime | None,
    now: datetime,
    *,
    quota: bool = False,
) -> Invite:
    """Checks in the API's order: 400 (expiresAt), then 409 (closed, member, already invited,
    and with `quota` the session's pending invites; `set_invited` checks that for its list)."""
    if expires_at is not None and expires_at <= now:
        message = "expiresAt must be in the future."
        raise InvalidInput(message, errors=[field_error("expiresAt", message, "in_past")])
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    if Membership.objects.filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} is already a member.", code="already_member")
    if Invite.objects.pending(now).filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} already has a pending invite.", code="already_invited")
    if quota and settings.QUOTA_PENDING_INVITES_PER_SESSION and not permissions.is_operator(actor):
        check_pending_invites_quota(Invite.objects.pending(now).filter(session=session).count() + 1)
    return Invite.objects.create(
        session=session,
        player=player,
        inviting_player_id=actor.id,
        expires_at=expires_at,
        date_created=now,
        date_modified=now,
    )


class InviteChange(NamedTuple):
    """What `set_invited` did to one invite, for its event (written after the commit)."""

    type: EventType
    invite: Invite
    player_uid: Any


def set_invited(session: GameSession, actor: Actor, players: list[Player], now: datetime) -> list[InviteChange]:
    """`invited` on create/update sets the whole list (resolved by `documents.players_by_uid`): new
    players are invited, pending invites left out are revoked. Returns what changed (empty:
    nothing), for `invite_events`."""
    _expire_stale_invites(session, now)
    wanted = {player.id: player for player in players}
    pending = {
        i.player_id: i
        for i in Invite.objects.filter(session=session, state=InviteState.PENDING).select_related("player")
    }
    if not permissions.is_operator(actor):
        check_pending_invites_quota(len(wanted))  # the list is what stays pending
    changes: list[InviteChange] = []
    for player_id, invite in pending.items():
        if player_id not in wanted:
            invite.state = InviteState.REVOKED
            invite.date_modified = now
            invite.save(update_fields=["state", "date_modified"])
            changes.append(InviteChange(EventType.INVITE_REVOKED, invite, invite.player.uid))
    for player_id, player in wanted.items():
        if player_id not in pending:
            invite = _invite(session, actor, player, None, now)
            changes.append(InviteChange(EventType.INVITE_CREATED, invite, player.uid))
    return changes


def invite_event(
    session: GameSession, actor: Actor | None, kind: EventType, invite: Invite, player_uid: Any, now: datetime
) -> SessionEvent:
    """An invite's event, after its session's commit (it carries the new version)."""
    return events.event(
        session,
        kind,
        actor=actor,
        at=now,
        player_uid=player_uid,
        data={"inviteId": invite.pk, "expiresAt": iso(invite.expires_at)},
    )


def invite_events(session: GameSession, actor: Actor, changes: list[InviteChange], now: datetime) -> list[SessionEvent]:
    return [invite_event(session, actor, change.type, change.invite, change.player_uid, now) for change in changes]


@transaction.atomic
def invite_create(*, session_id: int, actor: Actor, player_uid: Any, expires_at: datetime | None = None) -> Invite:
    """The host (or session:*) invites a player: 400 unknown, 409 member or already invited."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = documents.player_by_uid(player_uid, "player")
    _expire_stale_invites(session, now)
    invite = _invite(session, actor, player, expires_at, now, quota=True)
    documents.session_commit(
        session,
        now=now,
        logged=lambda: [invite_event(session, actor, EventType.INVITE_CREATED, invite, player.uid, now)],
    )
    return invite


LOCKED_PLAYER_UID = "locked_player_uid"


def _lock_invite(invite_id: int) -> tuple[Invite, GameSession]:
    invite = Invite.objects.filter(pk=invite_id).only("session_id").first()
    if invite is None:
        raise NotFound("No such invite.", code="invite_not_found")
    session = documents.lock_session(invite.session_id)
    # The player's uid rides along for the events (its row is read, not locked: `of`).
    invite = (
        Invite.objects.select_for_update(of=("self",))
        .annotate(**{LOCKED_PLAYER_UID: F("player__uid")})
        .get(pk=invite_id)
    )
    return invite, session


def _require_pending(invite: Invite, now: datetime) -> None:
    state = InviteState.EXPIRED if invite.state == InviteState.PENDING and not invite.is_pending(now) else invite.state
    if state != InviteState.PENDING:
        raise Conflict(f"The invite is {state}.", code="invite_not_pending", state=state)


@transaction.atomic
def invite_accept(*, invite_id: int, actor: Actor) -> Invite:
    """The invited player joins: no password, within capacity, only an open session."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    if invite.player_id != actor.id:
        raise NotFound("No such invite.", code="invite_not_found")
    _require_pending(invite, now)
    membership.session_join(session_id=session.pk, actor=actor, via_invite=True)
    invite.refresh_from_db()
    return invite


@transaction.atomic
def invite_decline(*, invite_id: int, actor: Actor) -> Invite:
    """The invited player turns a pending invite down."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    if invite.player_id != actor.id:
        raise NotFound("No such invite.", code="invite_not_found")
    return _end_pending_invite(invite, session, actor, InviteState.DECLINED, EventType.INVITE_DECLINED, now)


@transaction.atomic
def invite_revoke(*, invite_id: int, actor: Actor) -> Invite:
    """The session's current host (or session:*) revokes a pending invite."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    permissions.authorize_session_manage(actor, session)
    return _end_pending_invite(invite, session, actor, InviteState.REVOKED, EventType.INVITE_REVOKED, now)


def _end_pending_invite(
    invite: Invite, session: GameSession, actor: Actor, state: InviteState, kind: EventType, now: datetime
) -> Invite:
    """Decline or revoke a locked invite (its session locked too): settle the session, refuse
    an invite no longer pending, record the new state, re-render `invited`, write the event."""
    documents.settle(session, now)
    _require_pending(invite, now)
    invite.state = state
    invite.date_modified = now
    invite.save(update_fields=["state", "date_modified"])
    documents.session_commit(
        session,
        now=now,
        logged=lambda: [invite_event(session, actor, kind, invite, getattr(invite, LOCKED_PLAYER_UID), now)],
    )
    return invite


@transaction.atomic
def reservation_create(
    *, session_id: int, actor: Actor, player_uid: Any, expires_at: datetime | None = None
) -> Reservation:
    """Hold a place for a player (host or session:*). Counts against capacity until used,
    cancelled or expired; does not change the session document."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = documents.player_by_uid(player_uid, "player")
    if expires_at is None:
        expires_at = now + timedelta(seconds=settings.RESERVATION_TTL)
    expires_at = places.expiry(expires_at)
    if expires_at <= now:
        message = "expiresAt must be in the future."
        raise InvalidInput(message, errors=[field_error("expiresAt", message, "in_past")])
    if session.status == S.CLOSED or session.status == S.CLOSING:
        raise Conflict(f"The session is {session.status}.", code="not_joinable", status=session.status)
    if Membership.objects.filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} is already a member.", code="already_member")
    if Reservation.objects.active(now).filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} already holds a reservation.", code="already_reserved")
    capacity = session.capacity
    if capacity is not None:
        taken = Membership.objects.filter(session=session).count()
        taken += Reservation.objects.active(now).filter(session=session).count()
        if taken >= capacity:
            raise Conflict("The session is full.", code="session_full")
    # The player's expired reservation here (not yet swept) gives way to the new one.
    documents.drop_reservations(Reservation.objects.filter(session=session, player=player), now, session=session)
    documents.touch_player_views({str(player.uid): now})
    reservation = Reservation.objects.create(
        session=session, player=player, created_by_id=actor.id, expires_at=expires_at, date_created=now
    )
    documents.hold_place(session, str(player.uid), expires_at)
    events.record_one(
        session,
        EventType.RESERVATION_CREATED,
        actor=actor,
        at=now,
        version=None,  # a reservation is not part of the session document
        player_uid=player.uid,
        data={"reservationId": reservation.pk, "expiresAt": iso(expires_at)},
    )
    return reservation


@transaction.atomic
def reservation_cancel(*, reservation_id: int, session_id: int, actor: Actor) -> Reservation:
    """The host, session:* or the reserved player cancels an active reservation (an expired
    one is gone already: 404). Returns it, as it was."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    reservation = (
        Reservation.objects.active(now)
        .filter(pk=reservation_id, session=session)
        .select_related("session", "player")
        .first()
    )
    if reservation is None:
        raise NotFound("No such reservation.", code="reservation_not_found")
    if reservation.player_id != actor.id:
        permissions.authorize_session_manage(actor, session)
    documents.drop_reservations(
        Reservation.objects.filter(pk=reservation.pk), now, cancelled_by=actor, cancel=True, session=session
    )
    return reservation
