"""The sessions resource (seeds 000 and 001) and its lifecycle actions (seed 004).

Views are thin: they find the session the caller may see (404 otherwise), check who may act
(403), validate the body (400) and call one service in `sessions_app.services`. Join, leave
and update leave the finding to the service, under its row lock (`check_visible`), so the
row is read once; a body they refuse on its own reads the session first, to keep the order
404, 403, 400.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from players_app.authentication import caller
from sessions_app import cursor, permissions, search
from sessions_app.filters import GameSessionFilterSet, parse_sort, select
from sessions_app.lists import ordered_page, session_count, session_page, viewer_id
from sessions_app.models import GameSession, GameSessionQuerySet, row_visible_to
from sessions_app.reads import count_visible
from sessions_app.services import lifecycle, membership, sessions
from sessions_project.conditional import if_none_match_hits
from sessions_project.errors import InvalidInput, NotFound, field_error
from sessions_project.pagination import PAGING_PARAMETERS, LimitSkipPagination, limit_skip
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import error_responses

from .search_parameters import CURSOR_PARAMETER, LINK_HEADER, SEARCH_PARAMETERS, search_errors
from .serializers import (
    DOCUMENT_COLUMNS,
    SESSION_ROW_BY_UID,
    JoinSerializer,
    SessionCountSerializer,
    SessionInputSerializer,
    SessionSerializer,
    document_for,
    session_document,
    viewer_of,
)

FILTER_NAMES = frozenset(GameSessionFilterSet.base_filters)
# What the list, its count and the truncate take to choose sessions (data.<key> besides).
SELECTING = search.SearchParameterNames(FILTER_NAMES | search.NAMES | {search.DATA_PLACEHOLDER})


def has_selection(params: Any) -> bool:
    return any(name in FILTER_NAMES or search.is_search_parameter(name) for name in params)


if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

_Row = TypeVar("_Row")

UID_PARAMETER = OpenApiParameter("uid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The session's uid.")
SORT_PARAMETER = OpenApiParameter(
    "sort",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description=(
        'A JSON object of members and directions, applied in order, e.g. {"dateCreated":"DESC"}. '
        "Sortable: uid, dateCreated, dateModified, version, status, visibility, numTeams, teamSize, "
        "type, name, highlight, workspaceId, closesAt, freePlaces (no capacity after every number), and "
        "data.<key> (grouped by the value's JSON type: numbers, strings, booleans, null, objects and arrays, "
        "then sessions without the key; by value within a type). Default newest first; uid ASC always breaks ties."
    ),
)
IF_MATCH = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description="The ETag you read; 412 if stale."
)
SESSION_PASSWORD = OpenApiParameter(
    "X-Session-Password",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The join password (GET has no body); the body's `password` works on POST.",
)
CLOSE_AFTER = OpenApiParameter(
    "closeAfter",
    {"type": "integer", "minimum": 0, "maximum": lifecycle.CLOSE_AFTER_MAX},
    OpenApiParameter.QUERY,
    description=(
        "Seconds, 0 to 3600. Present: close instead of delete (0 closes now; N > 0 puts the session "
        "in closing until closesAt). Absent: delete the session."
    ),
)
SESSION_EXAMPLE = OpenApiExample(
    "Create",
    value={"numTeams": 2, "teamSize": 4, "visibility": "public", "password": "s3cret", "data": {"map": "dust"}},
    request_only=True,
)


def parse_uid(value: str, field: str = "uid") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        message = f"{value!r} is not a valid UUID."
        raise InvalidInput(message, code="invalid_uuid", errors=[field_error(field, message, "invalid_uuid")]) from None


def visible_session(request: Request, uid: str) -> GameSession:
    """The session with this uid if the caller may see it; 400 for a malformed uid, else 404."""
    session = GameSession.objects.filter(uid=parse_uid(uid)).order_by().first()
    if session is None or not session.is_visible_to(caller(request)):
        raise NotFound("No such session.", code="session_not_found")
    return session


def session_response(request: Request, session: GameSession, status_code: int = 200) -> Response:
    """The session just written, as the caller sees it, with its ETag."""
    document = document_for(session, viewer_of(caller(request)))
    return Response(
        document, status=status_code, headers={"ETag": sessions.etag_for(document["uid"], document["version"])}
    )


def request_object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("The body must be a JSON object.", code="not_an_object")
    return request.data


class SessionSchema(AutoSchema):
    """drf-spectacular documents filters on list views only; /sessions/count and the truncate
    (DELETE /sessions) take them too."""

    def get_filter_backends(self) -> list[Any]:
        if getattr(self.view, "action", None) in ("count", "truncate"):
            return getattr(self.view, "filter_backends", [])
        return super().get_filter_backends()


SESSION_DELETED = inline_serializer(
    "SessionDeleted", {"uid": serializers.UUIDField(), "deleted": serializers.BooleanField()}
)
SESSIONS_TRUNCATED = inline_serializer(
    "SessionsTruncated", {"deleted": serializers.IntegerField(help_text="How many sessions were deleted.")}
)


class SessionViewSet(DeclaredQueryParametersMixin, viewsets.GenericViewSet[GameSession]):
    """Sessions: list, count, create, truncate, read, update, delete or close, join, leave."""

    query_parameters = {
        "list": search.SearchParameterNames(SELECTING | PAGING_PARAMETERS | {"sort", "cursor"}),
        "count": SELECTING,
        "truncate": SELECTING,
        "destroy": frozenset({"closeAfter"}),
    }

    schema = SessionSchema()
    lookup_field = "uid"
    serializer_class = SessionSerializer
    filterset_class = GameSessionFilterSet
    pagination_class = LimitSkipPagination
    queryset = GameSession.objects.none()  # for the schema; get_queryset is what runs

    def get_queryset(self) -> GameSessionQuerySet:
        return GameSession.objects.visible_to(caller(self.request))

    def filter_queryset(self, queryset: QuerySet[GameSession, _Row]) -> QuerySet[GameSession, _Row]:
        # django-filter builds a form per request; most list calls name no filter at all.
        params = self.request.query_params
        if not has_selection(params):
            return queryset
        return select(queryset, params, actor=caller(self.request))  # type: ignore[arg-type,return-value]

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.action == "truncate":
            return [*super().get_permissions(), permissions.CanTruncateSessions()]
        return super().get_permissions()

    @extend_schema(
        operation_id="sessions_list",
        parameters=[SORT_PARAMETER, CURSOR_PARAMETER, *SEARCH_PARAMETERS, LINK_HEADER],
        responses={200: SessionSerializer(many=True), **search_errors(cursor=True)},
    )
    def list(self, request: Request) -> Response:
        """The sessions the caller may see, newest first; a plain array (no COUNT query). A
        `Link: <...>; rel="next"` header carries the next page's cursor when one may follow."""
        params = request.query_params
        ordering = parse_sort(params.get("sort"))
        limit, skip = limit_skip(params)
        now = timezone.now()
        print_ = cursor.fingerprint(ordering, params)
        after = None
        if params.get("cursor"):
            if params.get("skip"):
                message = "Use skip or cursor, not both."
                raise InvalidInput(
                    message, code="skip_with_cursor", errors=[field_error("skip", message, "skip_with_cursor")]
                )
            values = cursor.decode(params["cursor"], ordering, print_)
            after = cursor.after_q(ordering, values, connection.vendor)
        # The page's rows also hold what its order reads (for the next cursor).
        columns = (*DOCUMENT_COLUMNS, *(n for n in cursor.sort_names(ordering) if n not in DOCUMENT_COLUMNS))
        if not has_selection(params) and after is None:
            # The lobby list every idle client polls: a prepared read per shape (lists.py).
            page = session_page(caller(request), columns, ordering=ordering, limit=limit, skip=skip, now=now)
        else:
            # The filters apply to every session; ordered_page applies the caller's visibility
            # (what get_queryset's visible_to does) and orders the page as the prepared read does.
            filtered = self.filter_queryset(GameSession.objects.all())
            assert isinstance(filtered, GameSessionQuerySet)
            player_id = viewer_id(caller(request))
            page = list(
                ordered_page(
                    filtered,
                    columns,
                    player_id=player_id,
                    now=now,
                    ordering=ordering,
                    limit=limit,
                    skip=skip,
                    after=after,
                )
            )
        headers = {}
        if len(page) == limit:
            # The same request from after this page's last row (skip gives way to the cursor).
            query = [
                (name, value) for name in params if name not in ("skip", "cursor") for value in params.getlist(name)
            ]
            query.append(("cursor", cursor.encode(ordering, page[-1], print_)))
            headers["Link"] = f'<{request.build_absolute_uri(request.path)}?{urlencode(query)}>; rel="next"'
        viewer = viewer_of(caller(request))
        return Response([session_document(row, now, viewer) for row in page], headers=headers)

    @extend_schema(
        operation_id="sessions_count",
        parameters=SEARCH_PARAMETERS,
        responses={200: SessionCountSerializer, **search_errors()},
    )
    def count(self, request: Request) -> Response:
        """How many sessions the list would hold, with the same filters."""
        if not has_selection(request.query_params):
            return Response({"count": session_count(caller(request), now=timezone.now())})  # prepared
        # The filters apply to every session; count_visible applies the caller's visibility
        # itself, per visibility (what get_queryset's visible_to does, split for the indexes).
        sessions = self.filter_queryset(GameSession.objects.all())
        assert isinstance(sessions, GameSessionQuerySet)
        return Response({"count": count_visible(sessions, caller(request))})

    @extend_schema(
        operation_id="sessions_create",
        request=SessionInputSerializer,
        responses={201: SessionSerializer, **error_responses(400, 403, 409)},
        examples=[SESSION_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        """Create a session; the caller becomes its host and first member."""
        body = request_object(request)
        permissions.authorize_session_create(caller(request), body)
        serializer = SessionInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        values.pop("version", None)
        session = sessions.session_create(actor=caller(request), values=values)
        return session_response(request, session, status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="sessions_truncate",
        parameters=SEARCH_PARAMETERS,
        request=None,
        responses={200: SESSIONS_TRUNCATED, **search_errors(403)},
        description=(
            "Delete the sessions GET /sessions/count counts with the same filters: without a filter, "
            "every session the caller may see (all of them for session:* accounts and superusers). "
            "Needs the truncate_sessions permission."
        ),
    )
    def truncate(self, request: Request) -> Response:
        """Delete the sessions the filters select (all without one); needs truncate_sessions."""
        scoped = self.filter_queryset(self.get_queryset())
        return Response({"deleted": sessions.session_truncate(sessions=scoped, actor=caller(request))})

    @extend_schema(
        operation_id="sessions_retrieve",
        parameters=[UID_PARAMETER],
        responses={
            200: SessionSerializer,
            304: OpenApiResponse(description="If-None-Match matched the ETag."),
            **error_responses(400, 404),
        },
    )
    def retrieve(self, request: Request, uid: str) -> Response:
        """One session; a strong ETag derived from uid and version."""
        row = SESSION_ROW_BY_UID.first(parse_uid(uid))
        if row is None or not row_visible_to(caller(request), row):
            raise NotFound("No such session.", code="session_not_found")
        etag = sessions.etag_for(row["uid"], row["version"])
        if if_none_match_hits(request.headers.get("If-None-Match"), etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(session_document(row, viewer=viewer_of(caller(request))), headers={"ETag": etag})

    def _update(self, request: Request, uid: str, *, partial: bool) -> Response:
        """The service reads the session under its lock and runs `_refuse_update` there (404,
        then 403 and `users`, before its own checks). A body refused on its own (400) reads
        the session here first, to answer in the same order: 404, 403, then the 400."""
        session_uid = parse_uid(uid)
        actor = caller(request)
        body: dict[str, Any] | None = None
        try:
            body = request_object(request)
            serializer = SessionInputSerializer(data=body, partial=True)
            serializer.is_valid(raise_exception=True)
        except Exception:
            session = visible_session(request, uid)
            if body is not None:
                self._refuse_update(actor, session, body, None)
            raise
        values = dict(serializer.validated_data)
        version = values.pop("version", None)
        users = values.pop("users", None)
        if not partial and version is None:
            self._refuse_update(actor, visible_session(request, uid), body, None)
            message = "PUT must carry the version you read."
            raise InvalidInput(message, code="version_required", errors=[field_error("version", message, "required")])
        if not values:
            self._refuse_update(actor, visible_session(request, uid), body, users)
            raise InvalidInput("The body names no member to update.", code="nothing_to_update")
        session = sessions.session_update(
            session_uid=session_uid,
            actor=actor,
            values=values,
            expected_version=version,
            if_match=request.headers.get("If-Match"),
            check_visible=True,
            precheck=lambda locked: self._refuse_update(actor, locked, body, users),
        )
        return session_response(request, session)

    @staticmethod
    def _refuse_update(actor: Any, session: GameSession, body: dict[str, Any], users: Any) -> None:
        """What the view refuses about a body for this session: who may change these members
        (403, before the body's 400s) and a `users` that is not the current members (400)."""
        names = SessionInputSerializer.FIELD_NAMES
        fields = {names.get(key, key) for key in body if key in SessionInputSerializer.UPDATABLE}
        permissions.authorize_session_update(actor, session, fields - {"users"})
        if "hostUid" in body and body["hostUid"] is None and session.host_id is not None:
            permissions.authorize_host_removal(actor)  # 403 before the body's 400s
        if "serverUid" in body:
            permissions.authorize_server_uid(actor, session.server_uid, body["serverUid"])
        # Naming only the current members changes nothing; anything else is refused here, as a
        # 400 that comes before the service's 412 and 409.
        if users is not None and {str(u) for u in users} != set(session.users_doc):
            message = "users changes only through join, leave, kick and invites."
            raise InvalidInput(message, code="read_only", errors=[field_error("users", message, "read_only")])

    @extend_schema(
        operation_id="sessions_update",
        parameters=[UID_PARAMETER, IF_MATCH],
        request=SessionInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409, 412)},
    )
    def update(self, request: Request, uid: str) -> Response:
        """Update with `version` (required). Members left out keep their values."""
        return self._update(request, uid, partial=False)

    @extend_schema(
        operation_id="sessions_partial_update",
        parameters=[UID_PARAMETER, IF_MATCH],
        request=SessionInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409, 412)},
    )
    def partial_update(self, request: Request, uid: str) -> Response:
        """Partial update; `version` optional. name/desc/highlight need customise_session."""
        return self._update(request, uid, partial=True)

    @extend_schema(
        operation_id="sessions_destroy",
        parameters=[UID_PARAMETER, CLOSE_AFTER],
        request=None,
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="SessionDeleteResult",
                    serializers=[SESSION_DELETED, SessionSerializer],
                    resource_type_field_name=None,
                ),
                description="Without closeAfter: {uid, deleted: true}. With closeAfter: the session.",
            ),
            **error_responses(400, 403, 404, 409),
        },
    )
    def destroy(self, request: Request, uid: str) -> Response:
        """Delete the session, or with closeAfter close it (answering with the session)."""
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        raw = request.query_params.get("closeAfter")
        if raw is None:
            sessions.session_delete(session_id=session.pk, actor=caller(request))
            return Response({"uid": str(session.uid), "deleted": True})
        # ASCII digits only (str.isdigit also takes other scripts' digits), and few of them:
        # int() of a huge string is slow and raises past 4300 digits.
        if not re.fullmatch(r"[0-9]{1,5}", raw) or int(raw) > lifecycle.CLOSE_AFTER_MAX:
            message = f"closeAfter must be whole seconds from 0 to {lifecycle.CLOSE_AFTER_MAX}."
            raise InvalidInput(message, errors=[field_error("closeAfter", message, "out_of_range")])
        session = lifecycle.session_close(session_id=session.pk, actor=caller(request), close_after=int(raw))
        return session_response(request, session)

    @extend_schema(
        methods=["POST"],
        operation_id="sessions_join",
        parameters=[UID_PARAMETER, SESSION_PASSWORD],
        request=JoinSerializer,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409, 429)},
    )
    @extend_schema(
        methods=["GET"],
        operation_id="sessions_join_get",
        parameters=[UID_PARAMETER, SESSION_PASSWORD],
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409, 429)},
    )
    def join(self, request: Request, uid: str) -> Response:
        """Join (POST, or GET as the seed has it): password, capacity, team placement."""
        session_uid = parse_uid(uid)
        try:
            body = request_object(request) if request.method == "POST" else {}
            serializer = JoinSerializer(data=body)
            serializer.is_valid(raise_exception=True)
        except Exception:
            # The service decides 404 under its lock; a malformed body (400) must not be
            # answered before an invisible session's 404, so that case reads it here first.
            visible_session(request, uid)
            raise
        password = serializer.validated_data.get("password") or request.headers.get("X-Session-Password")
        session = membership.session_join(
            session_uid=session_uid,
            actor=caller(request),
            password=password,
            team=serializer.validated_data.get("team"),
            check_visible=True,
        )
        return session_response(request, session)

    @extend_schema(
        methods=["POST"],
        operation_id="sessions_leave",
        parameters=[UID_PARAMETER],
        request=None,
        responses={200: SessionSerializer, **error_responses(400, 404, 409)},
    )
    @extend_schema(
        methods=["GET"],
        operation_id="sessions_leave_get",
        parameters=[UID_PARAMETER],
        responses={200: SessionSerializer, **error_responses(400, 404, 409)},
    )
    def leave(self, request: Request, uid: str) -> Response:
        """Leave (POST, or GET as the seed has it); the host hands over to the earliest member."""
        session = membership.session_leave(session_uid=parse_uid(uid), actor=caller(request), check_visible=True)
        return session_response(request, session)

    @extend_schema(
        operation_id="sessions_heartbeat",
        parameters=[UID_PARAMETER],
        request=None,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409)},
    )
    def heartbeat(self, request: Request, uid: str) -> Response:
        """Keep the session from going idle; does not move version."""
        session = visible_session(request, uid)
        permissions.authorize_heartbeat(caller(request), session)
        session = lifecycle.session_heartbeat(session_id=session.pk, actor=caller(request))
        return session_response(request, session)
