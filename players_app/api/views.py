"""Registration, the caller's own player, and the token routes."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from players_app import services
from players_app.authentication import SCOPES_APP
from sessions_project.errors import Forbidden
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import ERRORS_401, error_responses

from .serializers import PlayerRegistrationSerializer, PlayerSerializer


def scopes_of(user) -> list[str]:
    """The caller's API scopes, from its token or (for a loaded Player) its permissions."""
    if hasattr(user, "_scopes"):
        return sorted(user._scopes)
    prefix = SCOPES_APP + "."
    return sorted(p[len(prefix) :] for p in user.get_all_permissions() if p.startswith(prefix))


def player_document(user) -> dict:
    return {
        "uid": str(user.uid),
        "username": user.username,
        "isStaff": bool(user.is_staff),
        "scopes": scopes_of(user),
    }


class PlayerRegisterView(DeclaredQueryParametersMixin, APIView):
    """POST /api/v1/players: open registration (OPEN_REGISTRATION=0 turns it off)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="players_register",
        request=PlayerRegistrationSerializer,
        responses={
            201: OpenApiResponse(PlayerSerializer, description="The new player."),
            **error_responses(400, 403, authenticated=False),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        if not settings.OPEN_REGISTRATION:
            raise Forbidden("Registration is closed on this server.", code="registration_closed")
        serializer = PlayerRegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        player = services.player_create(**serializer.validated_data)
        return Response(player_document(player), status=status.HTTP_201_CREATED)


class PlayerMeView(DeclaredQueryParametersMixin, APIView):
    """GET /api/v1/players/me: the caller, as its token describes it."""

    @extend_schema(operation_id="players_me", responses={200: PlayerSerializer, **ERRORS_401})
    def get(self, request: Request) -> Response:
        return Response(player_document(request.user))


class PlayerTokenObtainView(DeclaredQueryParametersMixin, TokenObtainPairView):
    """POST /api/v1/auth/token (simplejwt's view, refusing unknown query parameters)."""


class PlayerTokenRefreshView(DeclaredQueryParametersMixin, TokenRefreshView):
    """POST /api/v1/auth/token/refresh."""
