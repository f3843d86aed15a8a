"""Routes of the players API and the JWT token routes."""

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view

from sessions_project.schema import error_responses

from .serializers import AccessTokenSerializer, TokenPairSerializer
from .views import LogoutView, PlayerMeView, PlayerRegisterView, PlayerTokenObtainView, PlayerTokenRefreshView

# 401: wrong credentials, an inactive player, or a bad or expired refresh token.
token_obtain = extend_schema_view(
    post=extend_schema(
        operation_id="auth_token",
        auth=[],
        description=(
            "Username and password in, an access and a refresh token out. Refused credentials are counted "
            "per username and per client address: past LOGIN_FAILURE_RATE (10 a minute by default) every "
            "attempt gets 429 `login_throttled` with Retry-After, whatever its password."
        ),
        responses={200: TokenPairSerializer, **error_responses(400, 401, 429, authenticated=False)},
    )
)(PlayerTokenObtainView)
token_refresh = extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        auth=[],
        description=(
            "A refresh token in, a new access token (carrying the player's current scopes) and a new refresh "
            "token out. The refresh token sent is spent: using it again, or a token revoked by logout, a "
            "password change or a deactivation, is 401."
        ),
        responses={200: AccessTokenSerializer, **error_responses(400, 401, authenticated=False)},
    )
)(PlayerTokenRefreshView)

urlpatterns = [
    path("auth/token", token_obtain.as_view(), name="token-obtain"),
    path("auth/token/refresh", token_refresh.as_view(), name="token-refresh"),
    path("auth/logout", LogoutView.as_view(), name="token-logout"),
    path("players", PlayerRegisterView.as_view(), name="player-register"),
    path("players/me", PlayerMeView.as_view(), name="player-me"),
]
