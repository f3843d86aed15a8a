"""Registration, the caller's own player, and the token routes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from players_app import services
from players_app.authentication import SCOPES_APP, Caller, TokenPlayer, caller
from players_app.throttles import login_attempt, registration_attempt
from sessions_project.errors import Forbidden
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import ERRORS_401, error_responses
from sessions_project.throttling import client_address

from .serializers import LogoutSerializer, PlayerRefreshToken, PlayerRegistrationSerializer, PlayerSerializer


def scopes_of(user: Caller) -> list[str]:
    """The caller's API scopes, from its token or (for a loaded Player) its permissions."""
    if isinstance(user, TokenPlayer):
        return sorted(user.scopes)
    prefix = SCOPES_APP + "."
    return sorted(p[len(prefix) :] for p in user.get_all_permissions() if p.startswith(prefix))


def player_document(user: Caller) -> dict[str, Any]:
    return {
        "uid": str(user.uid),
        "username": user.username,
        "isStaff": bool(user.is_staff),
        "scopes": scopes_of(user),
    }


class PlayerRegisterView(DeclaredQueryParametersMixin, APIView):
    """POST /api/v1/players: open registration (OPEN_REGISTRATION=0 turns it off)."""

    permission_classes = [AllowAny]
    authentication_classes: list[type[BaseAuthentication]] = []

    @extend_schema(
        operation_id="players_register",
        request=PlayerRegistrationSerializer,
        responses={
            201: OpenApiResponse(PlayerSerializer, description="The new player."),
            **error_responses(400, 403, 429, authenticated=False),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        if not settings.OPEN_REGISTRATION:
            raise Forbidden("Registration is closed on this server.", code="registration_closed")
        with registration_attempt(address=client_address(request)):
            serializer = PlayerRegistrationSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            player = services.player_create(**serializer.validated_data)
        return Response(player_document(player), status=status.HTTP_201_CREATED)


class PlayerMeView(DeclaredQueryParametersMixin, APIView):
    """GET /api/v1/players/me: the caller, as its token describes it."""

    @extend_schema(operation_id="players_me", responses={200: PlayerSerializer, **ERRORS_401})
    def get(self, request: Request) -> Response:
        return Response(player_document(caller(request)))


class PlayerTokenObtainView(DeclaredQueryParametersMixin, TokenObtainPairView):
    """POST /api/v1/auth/token: refused credentials are counted per username and per client
    address (LOGIN_FAILURE_RATE); past the limit every attempt is 429, the right password too.
    The password is checked exactly as before, so timing says nothing new about usernames."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data
        username = data.get("username") if isinstance(data, dict) else None
        with login_attempt(username=username, address=client_address(request)) as attempt:
            try:
                return super().post(request, *args, **kwargs)
            except AuthenticationFailed:
                attempt.count()
                raise


class LogoutView(DeclaredQueryParametersMixin, APIView):
    """POST /api/v1/auth/logout: revoke a refresh token (the token itself is the credential)."""

    permission_classes = [AllowAny]
    authentication_classes: list[type[BaseAuthentication]] = []

    @extend_schema(
        operation_id="auth_logout",
        request=LogoutSerializer,
        responses={
            204: OpenApiResponse(description="The refresh token is revoked: it refreshes nothing from now on."),
            **error_responses(400, 401),
        },
        auth=[],
        description=(
            "Revoke the refresh token given. A token that is malformed, expired or already revoked is 401. "
            "Access tokens already issued stay valid until they expire (JWT_ACCESS_SECONDS)."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = PlayerRefreshToken(serializer.validated_data["refresh"])
            services.refresh_token_spend(token.payload[api_settings.JTI_CLAIM])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlayerTokenRefreshView(DeclaredQueryParametersMixin, TokenRefreshView):
    """POST /api/v1/auth/token/refresh."""
