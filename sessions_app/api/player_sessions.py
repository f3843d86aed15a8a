"""GET /api/v1/players/{player_uuid}/sessions: a player's sessions view (seed 003).

Checks, in order: a malformed uuid is 400 (before any permission check, as the issue has it);
one's own view needs session:read-player:self (or either broader scope); another player's
needs session:read-player:any or session:*, else 403 whether that player exists or not (so
the route reveals nothing about who exists); with it, an unknown player is 404.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from players_app.models import Player
from sessions_app.models import SCOPE_ANY, SCOPE_READ_PLAYER_ANY, SCOPE_READ_PLAYER_SELF, perm
from sessions_app.reads import player_sessions_view
from sessions_project.errors import Forbidden, NotFound
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import error_responses

from .membership_serializers import PlayerSessionsSerializer
from .views import parse_uid

IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag you hold; 304 with no body while the view has not changed.",
)
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="Strong ETag of the view (a digest of the body): send it back as If-None-Match.",
)
PLAYER_UUID = OpenApiParameter("player_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The player's uid.")
EXAMPLE = OpenApiExample(
    "A member of one session, invited to another",
    value={
        "sessions": {
            "default": {
                "type": "default",
                "sessionIds": ["0b6f3c3e-8a61-4d8e-9d3c-9b1f4e0e2a10"],
                "pendingInvites": {
                    "5d0c1e7a-2f4b-4c1e-8f0a-3e2d1c0b9a87": {
                        "sessionId": "5d0c1e7a-2f4b-4c1e-8f0a-3e2d1c0b9a87",
                        "invitingPlayerUuid": "ea564fc5-02fe-4c04-ad02-57599658848e",
                    }
                },
                "reservedSessions": [],
            }
        },
        "lastUpdatedTimestamp": "2026-11-22T18:49:22.123Z",
    },
    response_only=True,
)


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match: `*`, or a comma-separated list of ETags (weak comparison, RFC 9110)."""
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


class PlayerSessionsView(DeclaredQueryParametersMixin, APIView):
    """The live sessions a player is in, invited to or holds a place in, by session type."""

    @extend_schema(
        operation_id="players_sessions",
        parameters=[PLAYER_UUID, IF_NONE_MATCH, ETAG],
        responses={
            200: OpenApiResponse(
                PlayerSessionsSerializer,
                description="The view, with an `ETag` header (a strong ETag: a digest of the body).",
                examples=[EXAMPLE],
            ),
            304: OpenApiResponse(description="If-None-Match matched the current ETag: no body."),
            **error_responses(400, 403, 404),
        },
    )
    def get(self, request: Request, player_uuid: str) -> Response:
        target = parse_uid(player_uuid, "player_uuid")
        user = caller(request)
        any_scope = user.has_perm(perm(SCOPE_READ_PLAYER_ANY)) or user.has_perm(perm(SCOPE_ANY))
        if str(target) == str(user.uid):
            if not (any_scope or user.has_perm(perm(SCOPE_READ_PLAYER_SELF))):
                raise Forbidden("Reading your sessions needs session:read-player:self.", code="read_player_forbidden")
            player_id = user.id
        else:
            if not any_scope:
                raise Forbidden(
                    "Reading another player's sessions needs session:read-player:any or session:*.",
                    code="read_player_forbidden",
                )
            found = Player.objects.filter(uid=target).values_list("id", flat=True).first()
            if found is None:
                raise NotFound("No such player.", code="player_not_found")
            player_id = found
        header = request.headers.get("If-None-Match")
        matches = (lambda etag: etag_matches(header, etag)) if header else None
        view = player_sessions_view(player_id=player_id, player_uid=target, matches=matches)
        headers = {"ETag": view.etag}
        if view.body is None or etag_matches(header, view.etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(view.body, headers=headers)
