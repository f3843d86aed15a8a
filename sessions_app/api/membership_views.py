"""Invites, reservations, team moves and kicks (issue 3).

Views are thin, in the API's error order: find what the caller may see (404), check what it
may do (403), validate the body (400), then one service in `sessions_app.services` decides
against the current state under the session's row lock (409).

Who sees an invite: its player, the player who sent it, the session's host and session:*
accounts; to anyone else an invite id is 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from sessions_app import permissions
from sessions_app.models import Invite, InviteQuerySet, InviteState, Reservation
from sessions_app.permissions import Actor
from sessions_app.services import invites, membership
from sessions_project.errors import Forbidden, InvalidInput, NotFound, field_error
from sessions_project.pagination import LIMIT_SCHEMA, PAGING_PARAMETERS, SKIP_SCHEMA, limit_skip
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import PATH_ID_SCHEMA, error_responses

from .membership_serializers import (
    InviteCreateSerializer,
    InviteListQuerySerializer,
    InviteSerializer,
    KickSerializer,
    ReservationCreateSerializer,
    ReservationSerializer,
    TeamJoinSerializer,
    invite_document,
    reservation_document,
)
from .serializers import MAX_TEAMS, SessionSerializer
from .views import UID_PARAMETER, request_object, session_response, visible_session

INVITE_ID = OpenApiParameter("invite_id", PATH_ID_SCHEMA, OpenApiParameter.PATH, description="The invite's id.")
RESERVATION_ID = OpenApiParameter(
    "reservation_id", PATH_ID_SCHEMA, OpenApiParameter.PATH, description="The reservation's id."
)
TEAM_INDEX = OpenApiParameter(
    "index",
    {"type": "integer", "minimum": 0, "maximum": MAX_TEAMS - 1},
    OpenApiParameter.PATH,
    description="The team's 0-based index (400 past the session's last team).",
)
PAGING = [
    OpenApiParameter("limit", LIMIT_SCHEMA, OpenApiParameter.QUERY, description="1 to 1000, default 100."),
    OpenApiParameter("skip", SKIP_SCHEMA, OpenApiParameter.QUERY, description="How many to skip (paging)."),
]
INVITE_STATE = OpenApiParameter(
    "state",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=InviteState.values,
    description="Only invites in this state as shown (`pending`: not yet expired; `expired`: past expiresAt).",
)
INVITE_EXAMPLE = OpenApiExample(
    "Invite a player for ten minutes",
    value={"player": "ea564fc5-02fe-4c04-ad02-57599658848e", "expiresAt": "2026-11-22T19:00:00Z"},
    request_only=True,
)
INVITE_RELATED = ("session", "player", "inviting_player")
INVITE_LIST_PARAMETERS = frozenset(InviteListQuerySerializer().fields) | PAGING_PARAMETERS


def parse_id(value: str, field: str) -> int:
    """A numeric id from the path: 400 for anything else (never a 500 or an HTML 404)."""
    if not value.isdigit() or len(value) > 18:
        message = f"{value!r} is not a valid id."
        raise InvalidInput(message, code="invalid_id", errors=[field_error(field, message, "invalid_id")])
    return int(value)


_M = TypeVar("_M", bound=Model)


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def paged(request: Request, queryset: QuerySet[_M]) -> QuerySet[_M]:
    limit, skip = limit_skip(request.query_params)
    return queryset[skip : skip + limit]


def filter_invite_state(queryset: InviteQuerySet, request: Request, now: datetime) -> QuerySet[Invite]:
    """`?state=`: the state as the API shows it (a pending invite past expiresAt is expired)."""
    state = validated(InviteListQuerySerializer, request.query_params).get("state")
    if state == InviteState.PENDING:
        return queryset.pending(now)
    if state == InviteState.EXPIRED:
        return queryset.filter(Q(state=InviteState.EXPIRED) | Q(state=InviteState.PENDING, expires_at__lte=now))
    if state:
        return queryset.filter(state=state)
    return queryset


def invites_response(request: Request, queryset: InviteQuerySet, *ordering: str) -> Response:
    """A page of invites filtered by `?state=` (one query, with their references)."""
    now = timezone.now()
    selected = filter_invite_state(queryset, request, now).select_related(*INVITE_RELATED).order_by(*ordering)
    return Response([invite_document(invite, now) for invite in paged(request, selected)])


def may_see_invite(user: Actor, invite: Invite) -> bool:
    return user.id in (invite.player_id, invite.inviting_player_id, invite.session.host_id) or permissions.is_operator(
        user
    )


def visible_invite(request: Request, invite_id: str) -> Invite:
    """The invite if the caller may see it (see the module docstring); 400 malformed, else 404."""
    pk = parse_id(invite_id, "invite_id")
    invite = Invite.objects.select_related(*INVITE_RELATED).filter(pk=pk).first()
    if invite is None or not may_see_invite(caller(request), invite):
        raise NotFound("No such invite.", code="invite_not_found")
    return invite


def invite_response(invite: Invite, status_code: int = 200) -> Response:
    """The invite as written (re-read with its references: one query)."""
    invite = Invite.objects.select_related(*INVITE_RELATED).get(pk=invite.pk)
    return Response(invite_document(invite, timezone.now()), status=status_code)


def require_invited_player(request: Request, invite: Invite) -> None:
    if invite.player_id != caller(request).id:
        raise Forbidden("Only the invited player may answer an invite.", code="not_invited_player")


class SessionInvitesView(DeclaredQueryParametersMixin, APIView):
    """POST: the host (or session:*) invites a player. GET: the session's invites."""

    query_parameters = {"get": INVITE_LIST_PARAMETERS}

    @extend_schema(
        operation_id="sessions_invites_create",
        parameters=[UID_PARAMETER],
        request=InviteCreateSerializer,
        responses={201: InviteSerializer, **error_responses(400, 403, 404, 409)},
        examples=[INVITE_EXAMPLE],
        description=(
            "Invite a player into the session (host or session:*). 400 for an unknown player or an expiresAt "
            "in the past; 409 `already_member`, `already_invited` or `session_closed`. Bumps the session's "
            "version (its `invited` changes)."
        ),
    )
    def post(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        values = validated(InviteCreateSerializer, request_object(request))
        invite = invites.invite_create(
            session_id=session.pk,
            actor=caller(request),
            player_uid=values["player"],
            expires_at=values.get("expires_at"),
        )
        return invite_response(invite, status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="sessions_invites_list",
        parameters=[UID_PARAMETER, INVITE_STATE, *PAGING],
        responses={200: InviteSerializer(many=True), **error_responses(400, 403, 404)},
        description="Every invite of the session, oldest first, in any state (host or session:*); `?state=` filters.",
    )
    def get(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        return invites_response(request, Invite.objects.filter(session=session), "date_created", "id")


class MyInvitesView(DeclaredQueryParametersMixin, APIView):
    """GET /players/me/invites: the caller's own invites."""

    query_parameters = {"get": INVITE_LIST_PARAMETERS}

    @extend_schema(
        operation_id="players_me_invites",
        parameters=[INVITE_STATE, *PAGING],
        responses={200: InviteSerializer(many=True), **error_responses(400)},
        description="The caller's invites, newest first, in any state; `?state=pending` for the open ones.",
    )
    def get(self, request: Request) -> Response:
        return invites_response(request, Invite.objects.filter(player_id=caller(request).id), "-date_created", "-id")


class InviteAcceptView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="invites_accept",
        parameters=[INVITE_ID],
        request=None,
        responses={200: InviteSerializer, **error_responses(400, 403, 404, 409)},
        description=(
            "The invited player joins the session: no password, within capacity, only while it is open "
            "(409 `session_full`, `team_full`, `not_joinable`, `invite_not_pending`)."
        ),
    )
    def post(self, request: Request, invite_id: str) -> Response:
        invite = visible_invite(request, invite_id)
        require_invited_player(request, invite)
        return invite_response(invites.invite_accept(invite_id=invite.pk, actor=caller(request)))


class InviteDeclineView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="invites_decline",
        parameters=[INVITE_ID],
        request=None,
        responses={200: InviteSerializer, **error_responses(400, 403, 404, 409)},
        description="The invited player turns the invite down (409 `invite_not_pending` if it is not pending).",
    )
    def post(self, request: Request, invite_id: str) -> Response:
        invite = visible_invite(request, invite_id)
        require_invited_player(request, invite)
        return invite_response(invites.invite_decline(invite_id=invite.pk, actor=caller(request)))


class InviteDetailView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="invites_revoke",
        parameters=[INVITE_ID],
        request=None,
        responses={200: InviteSerializer, **error_responses(400, 403, 404, 409)},
        description="The session's current host (or session:*) revokes a pending invite.",
    )
    def delete(self, request: Request, invite_id: str) -> Response:
        invite = visible_invite(request, invite_id)
        permissions.authorize_session_manage(caller(request), invite.session)
        return invite_response(invites.invite_revoke(invite_id=invite.pk, actor=caller(request)))


class SessionReservationsView(DeclaredQueryParametersMixin, APIView):
    """POST: hold a place for a player. GET: the session's active reservations."""

    query_parameters = {"get": PAGING_PARAMETERS}

    @extend_schema(
        operation_id="sessions_reservations_create",
        parameters=[UID_PARAMETER],
        request=ReservationCreateSerializer,
        responses={201: ReservationSerializer, **error_responses(400, 403, 404, 409)},
        description=(
            "Hold a place for a player (host or session:*): it counts against capacity until the player joins, "
            "it is cancelled or it expires. Does not change the session document or its version. 409 "
            "`already_member`, `already_reserved`, `session_full`, `not_joinable` (closing or closed)."
        ),
    )
    def post(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        values = validated(ReservationCreateSerializer, request_object(request))
        reservation = invites.reservation_create(
            session_id=session.pk,
            actor=caller(request),
            player_uid=values["player"],
            expires_at=values.get("expires_at"),
        )
        return Response(reservation_document(reservation), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="sessions_reservations_list",
        parameters=[UID_PARAMETER, *PAGING],
        responses={200: ReservationSerializer(many=True), **error_responses(400, 404)},
        description="Active reservations, oldest first: all of them for the host and session:*, else the caller's own.",
    )
    def get(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        queryset = Reservation.objects.active().filter(session=session)
        if not (permissions.is_operator(caller(request)) or permissions.is_host(caller(request), session)):
            queryset = queryset.filter(player_id=caller(request).id)
        reservations = paged(request, queryset.select_related("session", "player").order_by("date_created", "id"))
        return Response([reservation_document(reservation) for reservation in reservations])


class ReservationDetailView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_reservations_cancel",
        parameters=[UID_PARAMETER, RESERVATION_ID],
        request=None,
        responses={200: ReservationSerializer, **error_responses(400, 403, 404)},
        description="Cancel an active reservation (host, session:* or the reserved player); answers with it.",
    )
    def delete(self, request: Request, uid: str, reservation_id: str) -> Response:
        session = visible_session(request, uid)
        pk = parse_id(reservation_id, "reservation_id")
        reservation = invites.reservation_cancel(reservation_id=pk, session_id=session.pk, actor=caller(request))
        return Response(reservation_document(reservation))


class TeamJoinView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_teams_join",
        parameters=[UID_PARAMETER, TEAM_INDEX],
        request=TeamJoinSerializer,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409)},
        description=(
            "A member switches to this team; the host (or session:*) moves another member with "
            '`{"player": uid}`. 404 `team_not_found`; 409 `team_full`, `not_member`, `session_closed`.'
        ),
    )
    def post(self, request: Request, uid: str, index: str) -> Response:
        session = visible_session(request, uid)
        team = parse_id(index, "index")
        if team >= session.num_teams:
            raise NotFound(f"The session has no team {team}.", code="team_not_found")
        body = request_object(request)  # no body is {}; `null` or a list is refused
        if not permissions.names_self(caller(request), body.get("player")):
            permissions.authorize_session_manage(caller(request), session)
        values = validated(TeamJoinSerializer, body)
        session = membership.session_move_to_team(
            session_id=session.pk, actor=caller(request), index=team, player_uid=values.get("player")
        )
        return session_response(request, session)


class KickView(DeclaredQueryParametersMixin, APIView):
    @extend_schema(
        operation_id="sessions_kick",
        parameters=[UID_PARAMETER],
        request=KickSerializer,
        responses={200: SessionSerializer, **error_responses(400, 403, 404, 409)},
        description=(
            "The host (or session:*) removes a player's membership, active reservation and pending invite. "
            "409 `kick_self`, `nothing_to_kick`, `session_closed`."
        ),
    )
    def post(self, request: Request, uid: str) -> Response:
        session = visible_session(request, uid)
        permissions.authorize_session_manage(caller(request), session)
        values = validated(KickSerializer, request_object(request))
        session = membership.session_kick(session_id=session.pk, actor=caller(request), player_uid=values["player"])
        return session_response(request, session)
