"""Shapes of the players API and of the JWT token routes."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from players_app.authentication import player_claims
from players_app.models import Player
from sessions_project.fields import StrictCharField


def _add_claims(token, player: Player):
    for key, value in player_claims(player).items():
        token[key] = value
    return token


class PlayerTokenObtainPairSerializer(TokenObtainPairSerializer):
    """username + password -> access and refresh tokens carrying the player's claims."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # simplejwt adds these in __init__ as plain CharFields, which take 12345 as "12345".
        self.fields[self.username_field] = StrictCharField(write_only=True)
        self.fields["password"] = StrictCharField(write_only=True, style={"input_type": "password"})

    @classmethod
    def get_token(cls, user):
        return _add_claims(super().get_token(user), user)


class PlayerTokenRefreshSerializer(TokenRefreshSerializer):
    """A new access token whose claims are read afresh (permissions granted since apply)."""

    refresh = StrictCharField()

    def validate(self, attrs):
        refresh = RefreshToken(attrs["refresh"])
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        player = Player.objects.filter(id=user_id, is_active=True).first()
        if player is None:
            raise AuthenticationFailed("The token's player no longer exists or is inactive.", code="user_inactive")
        return {"access": str(_add_claims(refresh.access_token, player))}


class TokenPairSerializer(serializers.Serializer):
    """What POST /auth/token answers."""

    access = serializers.CharField(help_text="Send as `Authorization: jwt <access>`; short-lived.")
    refresh = serializers.CharField(help_text="Renews the access token at POST /auth/token/refresh.")


class AccessTokenSerializer(serializers.Serializer):
    """What POST /auth/token/refresh answers."""

    access = serializers.CharField(help_text="A new access token, with the player's current scopes.")


class PlayerRegistrationSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(write_only=True, style={"input_type": "password"})

    def validate_username(self, value: str) -> str:
        Player.username_validator(value)
        if Player.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("This username is taken.", code="unique")
        return value

    def validate(self, attrs):
        try:
            password_validation.validate_password(attrs["password"], Player(username=attrs["username"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}, code="password") from None
        return attrs


class PlayerSerializer(serializers.Serializer):
    """A player as the player sees itself."""

    uid = serializers.UUIDField(read_only=True)
    username = serializers.CharField(read_only=True)
    isStaff = serializers.BooleanField(source="is_staff", read_only=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)
