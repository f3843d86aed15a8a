"""Finding a game: quick join (POST /sessions/quick-join), joining by code
(POST /sessions/join-by-code) and rotating a session's join code (POST /sessions/{uid}/join-code).

Thin, in the API's error order: the caller's rights on what it sends (403), the body's shape
(400), then one service (`services.matchmaking`, `services.join_codes`) decides against the
current state (404, 409, 429).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from sessions_app import permissions
from sessions_app.services import join_codes, matchmaking
from sessions_project.fields import JSONObjectField, StrictCharField
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import coded_error_responses

from .serializers import MAX_TEAMS, JoinSerializer, SessionInputSerializer, SessionSerializer, WholeNumberField
from .views import SESSION_PASSWORD, UID_PARAMETER, request_object, session_response, visible_session

MAX_FILTERS = 64


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class FiltersField(JSONObjectField):
    """The list's filters as a JSON object of strings (checked in QuickJoinSerializer)."""


class QuickJoinSerializer(serializers.Serializer[Any]):
    filters = FiltersField(
        required=False,
        help_text="The list's filters as GET /sessions takes them, as strings: e.g. "
        '{"data.map": "harbor", "type": "ranked"}. An empty value counts as absent.',
    )
    team = WholeNumberField(
        required=False, allow_null=True, min_value=0, max_value=MAX_TEAMS - 1, help_text="0-based team index to join."
    )
    # A field, not Serializer.create (DRF's metaclass takes declared fields off the class).
    create = SessionInputSerializer(  # type: ignore[assignment]
        required=False,
        allow_null=True,
        help_text="A session body (as POST /sessions takes it) to create when nothing matches; the caller is its "
        "host and member. Later quick joins find it only if it matches their filters and has no password.",
    )

    def validate_filters(self, value: dict[str, Any]) -> dict[str, str]:
        """An object of strings (a JSON object, within the `data` limits: JSONObjectField)."""
        if len(value) > MAX_FILTERS:
            raise serializers.ValidationError(f"At most {MAX_FILTERS} filters.", code="max_length")
        wrong = {name: ["A filter's value is a string."] for name, text in value.items() if not isinstance(text, str)}
        if wrong:
            raise serializers.ValidationError(wrong)
        return value


class JoinByCodeSerializer(JoinSerializer):
    code = StrictCharField(max_length=64, trim_whitespace=False, help_text="The session's join code, any case.")


JOIN_CODE_ANSWER = inline_serializer("JoinCode", {"joinCode": serializers.CharField(help_text="The new code.")})

QUICK_JOIN_EXAMPLE = OpenApiExample(
    "Join a harbor game or start one",
    value={
        "filters": {"data.map": "harbor", "type": "ranked"},
        "create": {"numTeams": 2, "teamSize": 4, "type": "ranked", "data": {"map": "harbor"}},
    },
    request_only=True,
)


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class QuickJoinView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_quick_join",
        request=QuickJoinSerializer,
        responses={
            200: SessionSerializer,
            201: SessionSerializer,
            **coded_error_responses(
                {
                    400: ("invalid", "unknown_filter", "data_too_large", "unknown_player"),
                    403: ("host_forbidden", "users_forbidden", "server_uid_forbidden"),
                    404: ("no_match",),
                    409: ("quota_exceeded", "session_full", "integrity_conflict"),
                }
            ),
        },
        examples=[QUICK_JOIN_EXAMPLE],
        description=(
            "Join the best session matching `filters` that you may join now without a password: open, with a free "
            "place (or one reserved for you), public or private with your invite or reservation, with room in "
            "`team` if given; the fewest free places first, sessions without a capacity last, the oldest among "
            "equals. 200 with it; 200 with the matching live session you are in already, if any; when none "
            "matches, 201 with the session `create` describes (you its host and member, in `team` if given), or "
            "404 `no_match` without `create`. Quick joins with the same filters are served one at a time, so "
            "racing ones fill the sessions there are before creating any, and create no more than needed."
        ),
    )
    def post(self, request: Request) -> Response:
        body = request_object(request)
        if isinstance(body.get("create"), dict):
            permissions.authorize_session_create(caller(request), body["create"])  # 403 before 400
        values = validated(QuickJoinSerializer, body)
        create = values.get("create")
        if create is not None:
            create = dict(create)
            create.pop("version", None)
        session, created = matchmaking.session_quick_join(
            actor=caller(request), filters=values.get("filters") or {}, team=values.get("team"), create=create
        )
        return session_response(request, session, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class JoinByCodeView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_join_by_code",
        parameters=[SESSION_PASSWORD],
        request=JoinByCodeSerializer,
        responses={
            200: SessionSerializer,
            **coded_error_responses(
                {
                    400: ("invalid",),
                    403: ("wrong_password", "password_required"),
                    404: ("code_not_found",),
                    409: ("not_joinable", "session_full", "team_full"),
                    429: ("join_code_throttled", "join_throttled"),
                }
            ),
        },
        description=(
            "Join the session a join code names (any case), private ones too: the code stands in for an invite to "
            "see and join it, not for its password. Every other rule of a join applies. 404 `code_not_found` for a "
            "code that names no live session; after JOIN_CODE_MAX_FAILURES (5) of those within JOIN_CODE_WINDOW "
            "(60 s), every join by code of yours is 429 `join_code_throttled` with Retry-After, the right code too."
        ),
    )
    def post(self, request: Request) -> Response:
        values = validated(JoinByCodeSerializer, request_object(request))
        session = join_codes.session_join_by_code(
            actor=caller(request),
            code=values["code"],
            password=values.get("password") or request.headers.get("X-Session-Password"),
            team=values.get("team"),
        )
        return session_response(request, session)


class JoinCodeView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_join_code_rotate",
        parameters=[UID_PARAMETER],
        request=None,
        responses={
            200: JOIN_CODE_ANSWER,
            **coded_error_responses(
                {
                    400: ("invalid_uuid",),
                    403: ("not_host",),
                    404: ("session_not_found",),
                    409: ("session_closed",),
                },
                body=False,
            ),
        },
        description=(
            "Give the session a new join code (host or session:*): the old one stops working at once. Moves "
            '`version` (members see the code); its `session.updated` event shows `{"joinCode": null}`.'
        ),
    )
    def post(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        session = join_codes.session_rotate_join_code(session_id=session.pk, actor=caller(request))
        return Response({"joinCode": session.join_code})
