"""Create a player (or a game server account) from the shell."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from players_app.models import Player
from players_app.services import permission_from_name, player_create


class Command(BaseCommand):
    help = (
        "Create a player in the Players group. Give the password with --password, type it when "
        "prompted, or use --no-password for an account that only gets tokens from issue_token. "
        "--permission grants an API scope (repeatable), e.g. --permission 'session:*' for a game server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", metavar="USERNAME")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument("--password", metavar="P", help="The password (else you are prompted for it).")
        secret.add_argument(
            "--no-password", action="store_true", help="No usable password: the account signs in only by token."
        )
        parser.add_argument("--staff", action="store_true", help="May sign in to admin.")
        parser.add_argument("--superuser", action="store_true", help="Holds every permission (implies --staff).")
        parser.add_argument(
            "--permission",
            action="append",
            default=[],
            metavar="CODENAME",
            help="A permission codename or app_label.codename, e.g. session:*; repeat for several.",
        )

    def handle(
        self,
        *args: Any,
        username: str,
        password: str | None,
        no_password: bool,
        staff: bool,
        superuser: bool,
        **options: Any,
    ) -> None:
        permissions: list[str] = options["permission"]
        try:
            Player.username_validator(username)
        except ValidationError as exc:
            raise CommandError(f"Invalid username {username!r}: {' '.join(exc.messages)}") from None
        if Player.objects.filter(username__iexact=username).exists():
            raise CommandError(f"A player named {username!r} already exists.")
        for name in permissions:
            try:
                permission_from_name(name)
            except Permission.DoesNotExist:
                scopes = ", ".join(
                    sorted(
                        Permission.objects.filter(content_type__app_label="sessions_app").values_list(
                            "codename", flat=True
                        )
                    )
                )
                raise CommandError(f"No permission named {name!r}. The API scopes are: {scopes}.") from None
        if not no_password:
            if password is None:
                password = self._prompt_password()
            try:
                password_validation.validate_password(password, Player(username=username))
            except ValidationError as exc:
                raise CommandError(f"Password refused: {' '.join(exc.messages)}") from None

        player = player_create(
            username=username,
            password=None if no_password else password,
            is_staff=staff or superuser,
            is_superuser=superuser,
            permissions=permissions,
        )
        roles = [r for r, on in (("staff", player.is_staff), ("superuser", superuser)) if on] + permissions
        extra = f" with {', '.join(roles)}" if roles else ""
        self.stdout.write(self.style.SUCCESS(f"Created player {player.username} (uid {player.uid}){extra}."))
        if no_password:
            self.stdout.write(f"It has no password: get a token with `manage.py issue_token {player.username}`.")

    def _prompt_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("No password given and no terminal to ask for one: use --password or --no-password.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match.")
        if not first:
            raise CommandError("The password is empty: type one, or use --no-password.")
        return first
