"""Player workflows shared by the API, admin and management commands."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

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
