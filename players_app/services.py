"""Player workflows shared by the API, admin and management commands."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from .models import Player

PLAYERS_GROUP = "Players"
GAME_SERVERS_GROUP = "Game servers"


def default_group() -> Group:
    """The group every new player joins (created by a migration; recreated if deleted)."""
    group, _ = Group.objects.get_or_create(name=PLAYERS_GROUP)
    return group


def permission_from_name(name: str) -> Permission:
    """A permission from `codename` or `app_label.codename` (e.g. `session:*`)."""
    app_label, _, codename = name.partition(".") if "." in name else ("", "", name)
    queryset = Permission.objects.filter(codename=codename)
    if app_label:
        queryset = queryset.filter(content_type__app_label=app_label)
    permission = queryset.select_related("content_type").first()
    if permission is None:
        raise Permission.DoesNotExist(f"No permission named {name!r}")
    return permission


@transaction.atomic
def player_create(
    *,
    username: str,
    password: str | None,
    is_staff: bool = False,
    is_superuser: bool = False,
    permissions: Iterable[str] = (),
) -> Player:
    """Create a player in the default Players group, with optional extra permissions."""
    player = Player(username=username, is_staff=is_staff, is_superuser=is_superuser)
    if password:
        player.set_password(password)
    else:
        player.set_unusable_password()
    player.save()
    player.groups.add(default_group())
    extra = [permission_from_name(name) for name in permissions]
    if extra:
        player.user_permissions.add(*extra)
    return player


# --- refresh tokens -------------------------------------------------------------------------


def player_refresh_tokens_revoke(player: Player) -> int:
    """Revoke every outstanding refresh token of the player: the rule for a password change
    and a deactivation, wherever it happens (API, admin, commands). Revoked tokens stay revoked
    when the player is reactivated. Access tokens already issued live out their short life."""
    live = OutstandingToken.objects.filter(user=player, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in live.values_list("pk", flat=True)], ignore_conflicts=True
    )
    return len(revoked)


@transaction.atomic
def player_set_password(*, player: Player, password: str | None) -> Player:
    """A new password (None: unusable) for the player; its refresh tokens are revoked."""
    if password:
        player.set_password(password)
    else:
        player.set_unusable_password()
    player.save(update_fields=["password"])
    player_refresh_tokens_revoke(player)
    return player


@transaction.atomic
def player_set_active(*, player: Player, is_active: bool) -> Player:
    """(De)activate the player; deactivation revokes its refresh tokens for good."""
    player.is_active = is_active
    player.save(update_fields=["is_active"])
    if not is_active:
        player_refresh_tokens_revoke(player)
    return player


def refresh_token_spend(jti: str) -> None:
    """Mark a refresh token used (rotation) or revoked (logout), once: a token that is unknown
    or already revoked raises TokenError. The row lock makes two concurrent uses of one token
    answer one success and one refusal."""
    from rest_framework_simplejwt.exceptions import TokenError

    with transaction.atomic():
        # order_by(): the model orders by user, an outer join PostgreSQL cannot lock.
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=jti).order_by().first()
        # A token with no row was issued before revocation existed: it cannot be revoked, so
        # it is refused (its player signs in again).
        if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
            raise TokenError("Token is blacklisted")
        BlacklistedToken.objects.create(token=outstanding)
