"""The session event log over HTTP: a session's events, and a player's feed (issue 12).

Both are keyset pages by event id: `?after=<id>` (the last id the client has) and `?limit=`,
oldest first, a plain JSON array; a client polls with the last id it saw and misses nothing
of what was committed before its read.

Who sees what is `sessions_app.feeds`' rule, shared with the live routes (`sessions_app.live`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from sessions_app import feeds
from sessions_app.event_models import EventType
from sessions_project.pagination import AFTER_SCHEMA, LIMIT_SCHEMA, after_limit
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import error_responses

from .serializers import SESSION_ROW_BY_UID
from .views import UID_PARAMETER, parse_uid

EVENT_PARAMETERS = frozenset({"after", "limit"})
EVENT_PAGING = [
    OpenApiParameter(
        "after", AFTER_SCHEMA, OpenApiParameter.QUERY, description="Only events with an id above this one (default 0)."
    ),
    OpenApiParameter("limit", LIMIT_SCHEMA, OpenApiParameter.QUERY, description="1 to 1000, default 100."),
]


class SessionEventSerializer(serializers.Serializer[Any]):
    """One event (schema only: `feeds.event_document` builds it)."""

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
        hosts = feeds.session_access(actor, row)
        page = feeds.session_events(actor, session_uid, hosts=hosts, after=after, limit=limit)
        if row is None:
            feeds.deleted_session_check(session_uid, page)
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
        after, limit = after_limit(request.query_params)
        return Response(feeds.player_events(caller(request), after=after, limit=limit))
