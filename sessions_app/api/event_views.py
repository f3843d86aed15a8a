"""The session event log over HTTP: a session's events, and a player's feed (issue 12).

Both are keyset pages by event id: `?after=<id>` (the last id the client has) and `?limit=`,
oldest first, a plain JSON array; a client polls with the last id it saw and misses nothing
of what was committed before its read.

Who sees what (`SessionEvent.objects.seen_in_session_by`, `feed_of`): whoever may see a
session (the rule of GET /sessions/{uid}) sees its events, except the invite and reservation
events of a session that was private when they happened: those are its host's, the player's
concerned and session:* accounts'. The events of a deleted session stay readable by session:*
accounts until purged (EVENT_RETENTION_DAYS).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from sessions_app import permissions
from sessions_app.event_models import EventType, SessionEvent
from sessions_app.models import row_visible_to
from sessions_project.errors import NotFound
from sessions_project.pagination import AFTER_SCHEMA, LIMIT_SCHEMA, after_limit
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import error_responses
from sessions_project.times import iso

from .serializers import SESSION_ROW_BY_UID
from .views import UID_PARAMETER, parse_uid

EVENT_COLUMNS = ("id", "type", "session_uid", "version", "actor_uid", "at", "data")
EVENT_PARAMETERS = frozenset({"after", "limit"})
EVENT_PAGING = [
    OpenApiParameter(
        "after", AFTER_SCHEMA, OpenApiParameter.QUERY, description="Only events with an id above this one (default 0)."
    ),
    OpenApiParameter("limit", LIMIT_SCHEMA, OpenApiParameter.QUERY, description="1 to 1000, default 100."),
]


class SessionEventSerializer(serializers.Serializer[Any]):
    """One event (schema only: `event_document` builds it)."""

    id = serializers.IntegerField(help_text="Increasing and unique across the service: resume with ?after=.")
    type = serializers.ChoiceField(choices=EventType.choices)
    sessionUid = serializers.UUIDField()
    version = serializers.IntegerField(
        allow_null=True, help_text="The session's version after the change; null if the change did not move it."
    )
    actorUid = serializers.UUIDField(allow_null=True, help_text="Who made the change; null for the system (time).")
    at = serializers.DateTimeField()
    data = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
        help_text=(
            "What changed: `playerUid` on member.*, invite.* and reservation.* events, `team` on "
            "member.joined and member.moved, `previousHostUid` and `hostUid` on host.changed, `changes` "
            "on session.updated (a password as `hasPassword`)."
        )
    )


def event_document(row: dict[str, Any]) -> dict[str, Any]:
    actor_uid = row["actor_uid"]
    return {
        "id": row["id"],
        "type": row["type"],
        "sessionUid": str(row["session_uid"]),
        "version": row["version"],
        "actorUid": None if actor_uid is None else str(actor_uid),
        "at": iso(row["at"]),
        "data": row["data"],
    }


class SessionEventsView(DeclaredQueryParametersMixin, APIView):
    """GET /sessions/{uid}/events."""

    query_parameters = {"get": EVENT_PARAMETERS}

    @extend_schema(
        operation_id="sessions_events",
        parameters=[UID_PARAMETER, *EVENT_PAGING],
        responses={200: SessionEventSerializer(many=True), **error_responses(400, 404)},
        description=(
            "The session's events with an id above `after`, oldest first (404 `session_not_found` for a "
            "session the caller may not see). Invite and reservation events of a private session: its "
            "host, the player concerned and session:* accounts only. A deleted session's events stay "
            "readable by session:* accounts until purged."
        ),
    )
    def get(self, request: Request, uid: str) -> Response:
        session_uid = parse_uid(uid)
        actor = caller(request)
        after, limit = after_limit(request.query_params)
        row = SESSION_ROW_BY_UID.first(session_uid)
        if row is None:
            if not permissions.is_operator(actor):
                raise NotFound("No such session.", code="session_not_found")
        elif not row_visible_to(actor, row):
            raise NotFound("No such session.", code="session_not_found")
        hosts = row is not None and row["host_id"] is not None and row["host_id"] == actor.id
        events = (
            SessionEvent.objects.filter(session_uid=session_uid, id__gt=after)
            .seen_in_session_by(actor, hosts=hosts)
            .order_by("id")
            .values(*EVENT_COLUMNS)[:limit]
        )
        page = [event_document(event) for event in events]
        if row is None and not page and not SessionEvent.objects.filter(session_uid=session_uid).exists():
            raise NotFound("No such session.", code="session_not_found")  # nor any trace of one
        return Response(page)


class MyEventsView(DeclaredQueryParametersMixin, APIView):
    """GET /players/me/events."""

    query_parameters = {"get": EVENT_PARAMETERS}

    @extend_schema(
        operation_id="players_me_events",
        parameters=EVENT_PAGING,
        responses={200: SessionEventSerializer(many=True), **error_responses(400)},
        description=(
            "The events that concern the caller, across sessions, with an id above `after`, oldest first: "
            "every event of the sessions it is a member of or hosts (but other players' invite and "
            "reservation events of private sessions it does not host), and every event naming it as "
            "`playerUid` (its invites and reservations, in sessions it may not know yet; its joins, "
            "leaves and kicks)."
        ),
    )
    def get(self, request: Request) -> Response:
        actor = caller(request)
        after, limit = after_limit(request.query_params)
        events = (
            SessionEvent.objects.feed_of(actor.id, actor.uid)
            .filter(id__gt=after)
            .order_by("id")
            .values(*EVENT_COLUMNS)[:limit]
        )
        return Response([event_document(event) for event in events])
