"""Routes of the players API and the JWT token routes."""

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view

from sessions_project.schema import error_responses

from .serializers import AccessTokenSerializer, TokenPairSerializer
from .views import PlayerMeView, PlayerRegisterView, PlayerTokenObtainView, PlayerTokenRefreshView

# 401: wrong credentials, an inactive player, or a bad or expired refresh token.
token_obtain = extend_schema_view(
    post=extend_schema(
        operation_id="auth_token",
        auth=[],
        description="Username and password in, an access and a refresh token out.",
        responses={200: TokenPairSerializer, **error_responses(400)},
    )
)(PlayerTokenObtainView)
token_refresh = extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        auth=[],
        description="A refresh token in, a new access token out (carrying the player's current scopes).",
        responses={200: AccessTokenSerializer, **error_responses(400)},
    )
)(PlayerTokenRefreshView)

urlpatterns = [
    path("auth/token", token_obtain.as_view(), name="token-obtain"),
    path("auth/token/refresh", token_refresh.as_view(), name="token-refresh"),
    path("players", PlayerRegisterView.as_view(), name="player-register"),
    path("players/me", PlayerMeView.as_view(), name="player-me"),
]
