"""Shapes of the players API and of the JWT token routes."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.crypto import salted_hmac
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

from players_app.authentication import player_claims
from players_app.models import Player
from players_app.services import refresh_token_spend
from sessions_project.fields import StrictCharField

# Refresh tokens carry a fingerprint of the password hash: a password changed by any means
# (Django's changepassword command included) makes every earlier refresh token useless.
PASSWORD_CLAIM = "pwd"

_T = TypeVar("_T", bound=Token)


def password_fingerprint(player: Player) -> str:
    return salted_hmac("players_app.refresh-token.password", player.password).hexdigest()[:20]


class PlayerRefreshToken(RefreshToken):
    """A refresh token that keeps its password fingerprint out of the access tokens it mints."""

    # simplejwt's attribute is typed as its own five-claim tuple; it is only ever read as a collection.
    no_copy_claims = (*RefreshToken.no_copy_claims, PASSWORD_CLAIM)  # type: ignore[assignment]


def _add_claims(token: _T, player: Player) -> _T:
    for key, value in player_claims(player).items():
        token[key] = value
    return token


class PlayerTokenObtainPairSerializer(TokenObtainPairSerializer):
    """username + password -> access and refresh tokens carrying the player's claims."""

    token_class = PlayerRefreshToken

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # simplejwt adds these in __init__ as plain CharFields, which take 12345 as "12345".
        self.fields[self.username_field] = StrictCharField(write_only=True)
        self.fields["password"] = StrictCharField(write_only=True, style={"input_type": "password"})

    # Only players are issued tokens (the AUTH_USER_MODEL); simplejwt's signature also admits
    # its own TokenUser, which this project never authenticates with.
    @classmethod
    def get_token(cls, user: Player) -> RefreshToken:  # type: ignore[override]
        token = _add_claims(PlayerRefreshToken.for_user(user), user)  # what token_class makes
        token[PASSWORD_CLAIM] = password_fingerprint(user)
        return token


class PlayerTokenRefreshSerializer(TokenRefreshSerializer):
    """A refresh token in, a new access token (claims read afresh: permissions granted since
    apply) and a new refresh token out; the refresh token given is spent and never works again."""

    refresh = StrictCharField(help_text="A refresh token; it is spent (rotated) by this call.")
    token_class = PlayerRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = PlayerRefreshToken(attrs["refresh"])  # signature, expiry, type, revocation
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        player = Player.objects.filter(id=user_id, is_active=True).first() if user_id is not None else None
        if player is None:
            raise AuthenticationFailed("The token's player no longer exists or is inactive.", code="user_inactive")
        if refresh.payload.get(PASSWORD_CLAIM) != password_fingerprint(player):
            raise TokenError("The player's password changed since this token was issued.")
        refresh_token_spend(refresh.payload[api_settings.JTI_CLAIM])
        fresh = PlayerTokenObtainPairSerializer.get_token(player)
        return {"access": str(fresh.access_token), "refresh": str(fresh)}


class LogoutSerializer(serializers.Serializer[Any]):
    """What POST /auth/logout takes."""

    refresh = StrictCharField(help_text="The refresh token to revoke.")


class TokenPairSerializer(serializers.Serializer[Any]):
    """What POST /auth/token answers."""

    access = serializers.CharField(help_text="Send as `Authorization: jwt <access>`; short-lived.")
    refresh = serializers.CharField(help_text="Renews the access token at POST /auth/token/refresh.")


class AccessTokenSerializer(serializers.Serializer[Any]):
    """What POST /auth/token/refresh answers."""

    access = serializers.CharField(help_text="A new access token, with the player's current scopes.")
    refresh = serializers.CharField(help_text="A new refresh token; the one sent is spent and refused from now on.")


class PlayerRegistrationSerializer(serializers.Serializer[Any]):
    username = StrictCharField(max_length=150)
    password = StrictCharField(write_only=True, style={"input_type": "password"})

    def validate_username(self, value: str) -> str:
        Player.username_validator(value)
        if Player.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("This username is taken.", code="unique")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            password_validation.validate_password(attrs["password"], Player(username=attrs["username"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}, code="password") from None
        return attrs


class PlayerSerializer(serializers.Serializer[Any]):
    """A player as the player sees itself."""

    uid = serializers.UUIDField(read_only=True)
    username = serializers.CharField(read_only=True)
    isStaff = serializers.BooleanField(source="is_staff", read_only=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)
