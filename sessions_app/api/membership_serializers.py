"""Shapes of invites, reservations, team moves, kicks and a player's sessions view (seed 003).

Input serializers validate the body's format; output is built by the `*_document` functions
from rows loaded with their references (one query for a list), and the output serializers
declare the same shapes for the OpenAPI schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from sessions_app.models import Invite, InviteState, Reservation
from sessions_project.fields import StrictChoiceField, StrictUUIDField
from sessions_project.times import iso

# --- input ------------------------------------------------------------------------------------


class InviteCreateSerializer(serializers.Serializer[Any]):
    player = StrictUUIDField(help_text="The invited player's uid.")
    expiresAt = serializers.DateTimeField(
        source="expires_at",
        required=False,
        allow_null=True,
        help_text="When the invite lapses (ISO 8601, in the future). Absent or null: never.",
    )


class ReservationCreateSerializer(serializers.Serializer[Any]):
    player = StrictUUIDField(help_text="The player the place is held for.")
    expiresAt = serializers.DateTimeField(
        source="expires_at",
        required=False,
        allow_null=True,
        help_text="When the place is released (ISO 8601, in the future). Absent or null: in RESERVATION_TTL "
        "seconds (5 minutes by default).",
    )


class TeamJoinSerializer(serializers.Serializer[Any]):
    player = StrictUUIDField(
        required=False, allow_null=True, help_text="The member to move (host or session:* only); absent: yourself."
    )


class KickSerializer(serializers.Serializer[Any]):
    player = StrictUUIDField(help_text="The player to remove: its membership, reservation and invite.")


class InviteListQuerySerializer(serializers.Serializer[Any]):
    state = StrictChoiceField(
        choices=InviteState.choices,
        required=False,
        help_text="Only invites in this state (`pending`: not yet expired; `expired`: past expiresAt).",
    )


# --- output -----------------------------------------------------------------------------------


def invite_state(invite: Invite, now: datetime) -> str:
    """The state as of now: a pending invite past its expiresAt reads `expired`."""
    if invite.state == InviteState.PENDING and not invite.is_pending(now):
        return InviteState.EXPIRED.value
    return invite.state


def invite_document(invite: Invite, now: datetime) -> dict[str, Any]:
    """An invite with its session, player and inviting player loaded (select_related)."""
    inviting = invite.inviting_player
    return {
        "id": invite.pk,
        "session": str(invite.session.uid),
        "player": str(invite.player.uid),
        "invitingPlayer": str(inviting.uid) if inviting is not None else None,
        "state": invite_state(invite, now),
        "dateCreated": iso(invite.date_created),
        "expiresAt": iso(invite.expires_at),
    }


def reservation_document(reservation: Reservation) -> dict[str, Any]:
    """A reservation with its session and player loaded (select_related)."""
    return {
        "id": reservation.pk,
        "session": str(reservation.session.uid),
        "player": str(reservation.player.uid),
        "expiresAt": iso(reservation.expires_at),
        "dateCreated": iso(reservation.date_created),
    }


class InviteSerializer(serializers.Serializer[Any]):
    """An invite (schema only: `invite_document` builds it)."""

    id = serializers.IntegerField()
    session = serializers.UUIDField(help_text="The session's uid.")
    player = serializers.UUIDField(help_text="The invited player's uid.")
    invitingPlayer = serializers.UUIDField(allow_null=True, help_text="Who invited (null if that account is gone).")
    state = serializers.ChoiceField(
        choices=InviteState.choices, help_text="`expired` once expiresAt has passed, whatever was stored."
    )
    dateCreated = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True)


class ReservationSerializer(serializers.Serializer[Any]):
    """A reservation (schema only: `reservation_document` builds it)."""

    id = serializers.IntegerField()
    session = serializers.UUIDField(help_text="The session's uid.")
    player = serializers.UUIDField(help_text="The player the place is held for.")
    expiresAt = serializers.DateTimeField()
    dateCreated = serializers.DateTimeField()


class PendingInviteSerializer(serializers.Serializer[Any]):
    sessionId = serializers.UUIDField(help_text="The session the player is invited to.")
    invitingPlayerUuid = serializers.UUIDField(allow_null=True, help_text="Who sent the invite.")


class PlayerSessionsOfTypeSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="The sessions' type.")
    sessionIds = serializers.ListField(
        child=serializers.UUIDField(), help_text="Live sessions the player is a member of, in joining order."
    )
    pendingInvites = serializers.DictField(
        child=PendingInviteSerializer(), help_text="Pending, unexpired invites, by session uid."
    )
    reservedSessions = serializers.ListField(
        child=serializers.UUIDField(), help_text="Live sessions where the player holds an active reservation."
    )


class PlayerSessionsSerializer(serializers.Serializer[Any]):
    """A player's sessions view (seed 003, camelCase)."""

    sessions = serializers.DictField(child=PlayerSessionsOfTypeSerializer(), help_text="By session type.")
    lastUpdatedTimestamp = serializers.DateTimeField(
        allow_null=True, help_text="When what this view shows last changed; null if it never held anything."
    )
