"""The session event log's model: one row per change of a session (issue 12), written by the
services through `services.events` in the transaction of the change. Imported by
`sessions_app.models`, which is where the rest of the code imports it from."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions_project.jsonfield import JSONField

from .models import SCOPE_ANY, GameSession, Membership, perm

if TYPE_CHECKING:
    from .permissions import Actor


class EventType(models.TextChoices):
    """The dotted, stable names of what can happen to a session (README "Session events")."""

    SESSION_CREATED = "session.created", "session.created"
    SESSION_UPDATED = "session.updated", "session.updated"
    SESSION_CLOSING = "session.closing", "session.closing"
    SESSION_CLOSED = "session.closed", "session.closed"
    SESSION_DELETED = "session.deleted", "session.deleted"
    MEMBER_JOINED = "member.joined", "member.joined"
    MEMBER_LEFT = "member.left", "member.left"
    MEMBER_KICKED = "member.kicked", "member.kicked"
    MEMBER_MOVED = "member.moved", "member.moved"
    HOST_CHANGED = "host.changed", "host.changed"
    INVITE_CREATED = "invite.created", "invite.created"
    INVITE_ACCEPTED = "invite.accepted", "invite.accepted"
    INVITE_DECLINED = "invite.declined", "invite.declined"
    INVITE_REVOKED = "invite.revoked", "invite.revoked"
    INVITE_EXPIRED = "invite.expired", "invite.expired"
    RESERVATION_CREATED = "reservation.created", "reservation.created"
    RESERVATION_CANCELLED = "reservation.cancelled", "reservation.cancelled"
    RESERVATION_EXPIRED = "reservation.expired", "reservation.expired"
    SCORE_SUBMITTED = "score.submitted", "score.submitted"


# Invite and reservation events of a private session are the host's, the player's and
# session:* accounts' only (SessionEvent.restricted).
RESTRICTED_PREFIXES = ("invite.", "reservation.")


class SessionEventQuerySet(models.QuerySet["SessionEvent"]):
    """Named reads of the event log: what a caller may see of one session, and its feed."""

    def seen_in_session_by(self, user: Actor, *, hosts: bool) -> SessionEventQuerySet:
        """Of one session's events (the caller may see the session), those it may see: all for
        its host (`hosts`) and session:*, else all but other players' restricted ones."""
        if hosts or user.has_perm(perm(SCOPE_ANY)):
            return self
        return self.filter(Q(restricted=False) | Q(player_uid=user.uid))

    def feed_of(self, player_id: int, player_uid: uuid.UUID | str) -> SessionEventQuerySet:
        """The events that concern a player: those naming it (`player_uid`: its joins, leaves,
        invites, reservations, scores...), and every event of the sessions it is a member of
        or hosts now, except other players' restricted ones in sessions it does not host."""
        member_of = Membership.objects.filter(player_id=player_id).values("session__uid")
        hosted = GameSession.objects.filter(host_id=player_id).values("uid")
        return self.filter(
            Q(player_uid=player_uid) | Q(session_uid__in=hosted) | (Q(session_uid__in=member_of) & Q(restricted=False))
        )


class SessionEvent(models.Model):
    """One change of a session, written by the service that made it in the same transaction.

    Not a foreign key to the session: the events of a deleted session stay (readable by
    session:* accounts) until purged by age (EVENT_RETENTION_DAYS, purge_sessions)."""

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    session_uid = models.UUIDField("session UID")
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The session's version after the change; empty if it did not move it."
    )
    actor_uid = models.UUIDField("actor UID", null=True, blank=True, help_text="Empty: the system (time, sweeper).")
    player_uid = models.UUIDField(
        "player UID", null=True, blank=True, help_text="The player concerned (member, invite, reservation, score)."
    )
    restricted = models.BooleanField(
        default=False,
        help_text="An invite or reservation event of a session private at the time: its host's, "
        "its player's and session:* accounts' only.",
    )
    at = models.DateTimeField(default=timezone.now)
    data = JSONField(default=dict, blank=True)

    objects = SessionEventQuerySet.as_manager()

    class Meta:
        verbose_name = "session event"
        verbose_name_plural = "session events"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["session_uid", "id"], name="event_session_id"),
            models.Index(fields=["player_uid", "id"], name="event_player_id"),
            models.Index(fields=["at"], name="event_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=[t.value for t in EventType]), name="event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
