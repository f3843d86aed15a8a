"""JWT authentication that trusts the token and does not load the user from the database.

The access token carries the player's id, uid, username, staff/superuser flags and API
scopes (its Django permissions in the `sessions_app` app), written when the token is issued
or refreshed. Access tokens are short-lived (JWT_ACCESS_SECONDS, 15 minutes by default), so
a permission change or a deactivation takes effect at the next refresh; in exchange no
request pays a user lookup.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeAlias

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow

from .models import Player

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

SCOPES_APP = "sessions_app"


class TokenPlayer:
    """The caller as the access token describes it; quacks like a Player for the API."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: Any):
        try:
            self.id: int = int(claims["user_id"])
            self.pk: int = self.id
            self.uid: str = claims["uid"]
            self.username: str = claims["username"]
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("The token does not describe a player.") from None
        self.is_staff = bool(claims.get("staff", False))
        self.is_superuser = bool(claims.get("su", False))
        self._scopes = frozenset(claims.get("scopes", ()))

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        if self.is_superuser:
            return True
        app_label, _, codename = perm.partition(".")
        return app_label == SCOPES_APP and codename in self._scopes

    @property
    def scopes(self) -> frozenset[str]:
        return self._scopes

    def __str__(self) -> str:
        return self.username


# Who calls an API view: the token's player, or a loaded Player (a test client's
# force_authenticate, or any authentication class that loads the user).
Caller: TypeAlias = TokenPlayer | Player


def caller(request: Request) -> Caller:
    """The authenticated caller of a view. Every view that reads it requires authentication
    (DRF's IsAuthenticated runs first), so an anonymous caller is only refused here again."""
    user: object = request.user
    if isinstance(user, (TokenPlayer, Player)):
        return user
    raise NotAuthenticated()


def player_claims(player: Player) -> dict[str, Any]:
    """What an access token says about a player (see the module docstring)."""
    prefix = SCOPES_APP + "."
    scopes = sorted(p[len(prefix) :] for p in player.get_all_permissions() if p.startswith(prefix))
    return {
        "uid": str(player.uid),
        "username": player.username,
        "staff": player.is_staff,
        "su": player.is_superuser,
        "scopes": scopes,
    }


@functools.lru_cache(maxsize=4096)
def _verified(raw_token: bytes) -> Token:
    # Only tokens that verify are kept: a call that raises is not cached.
    return JWTAuthentication().get_validated_token(raw_token)


class StatelessJWTAuthentication(JWTAuthentication):
    """`Authorization: jwt <token>` (or JWT / Bearer) without a database lookup.

    Verifying a token's signature and claims was a tenth of a GET by uid; a client sends the
    same access token until it expires, so each worker keeps the last few thousand tokens it
    verified and, for those, checks only the expiry again (access tokens are never revoked
    before it: logout blacklists the refresh token).
    """

    def get_validated_token(self, raw_token: bytes) -> Token:
        token = _verified(raw_token)
        try:
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            return super().get_validated_token(raw_token)  # expired since: the usual refusal
        return token

    # The stubs allow only a user model or simplejwt's TokenUser here; TokenPlayer is neither
    # on purpose (see the module docstring), and DRF needs no more of request.user than it has.
    def get_user(self, validated_token: Token) -> TokenPlayer:  # type: ignore[override]
        return TokenPlayer(validated_token)


try:  # describe the scheme in the OpenAPI schema (drf-spectacular is installed with the project)
    from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme

    class StatelessJWTScheme(SimpleJWTScheme):
        target_class = "players_app.authentication.StatelessJWTAuthentication"
        name = "jwtAuth"

        def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
            return {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`jwt <access token>` (also `JWT` or `Bearer`), from POST /api/v1/auth/token.",
            }
except ImportError:  # pragma: no cover
    pass


class StreamCredentials:
    """The caller of a live stream route and when its access token expires.

    `Authorization: jwt <token>` (JWT, Bearer) like every route; a client that cannot set
    headers on a WebSocket or EventSource (browsers) sends `?token=<access>` instead, which only
    these routes accept: a URL ends up in access logs, so a token there is as exposed as the
    logs are (it expires with JWT_ACCESS_SECONDS)."""

    def __init__(self, player: TokenPlayer, expires_at: float):
        self.player = player
        self.expires_at = expires_at


def stream_credentials(authorization: bytes | None, query_token: str | None) -> StreamCredentials:
    """Verify a stream's credentials (header first, then the query's token); raises
    AuthenticationFailed (no or bad credentials) like the REST routes' authentication."""
    from rest_framework.exceptions import AuthenticationFailed

    authentication = StatelessJWTAuthentication()
    raw: bytes | None = None
    if authorization:
        raw = authentication.get_raw_token(authorization)
    elif query_token:
        raw = query_token.encode()
    if raw is None:
        raise AuthenticationFailed("Authentication credentials were not provided.", code="not_authenticated")
    try:
        token = authentication.get_validated_token(raw)
        return StreamCredentials(authentication.get_user(token), float(token["exp"]))
    except (InvalidToken, TokenError, KeyError, TypeError, ValueError):
        raise AuthenticationFailed("The token is not valid or has expired.", code="token_not_valid") from None
