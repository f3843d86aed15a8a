"""Print an access token for a player, to paste into curl."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from players_app.api.serializers import PlayerTokenObtainPairSerializer
from players_app.models import Player
from sessions_project.commands import positive_int


class Command(BaseCommand):
    help = (
        "Print a JWT access token for USERNAME, carrying its current permissions, e.g.\n"
        "  TOKEN=$(python manage.py issue_token alice)\n"
        '  curl -H "Authorization: jwt $TOKEN" http://127.0.0.1:8000/api/v1/sessions'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument(
            "--lifetime",
            type=positive_int,
            metavar="SECONDS",
            help="How long the token is valid (default: the JWT_ACCESS_SECONDS setting).",
        )
        parser.add_argument("--refresh", action="store_true", help="Also print a refresh token on a second line.")

    def handle(self, *args: Any, username: str, lifetime: int | None, refresh: bool, **options: Any) -> None:
        player = Player.objects.filter(username=username).first()
        if player is None:
            raise CommandError(f"No player named {username!r}.")
        if not player.is_active:
            raise CommandError(f"The player {username!r} is inactive; it may not have a token.")
        refresh_token = PlayerTokenObtainPairSerializer.get_token(player)
        access = refresh_token.access_token
        if lifetime is not None:
            access.set_exp(lifetime=timedelta(seconds=lifetime))
        # The token alone on stdout, so that $(manage.py issue_token ...) captures just it.
        self.stdout.write(str(access))
        if refresh:
            self.stdout.write(str(refresh_token))
        self.stderr.write(
            f"Use it as the header  Authorization: jwt <token>  (player {player.username}).",
            style_func=self.style.NOTICE,
        )
