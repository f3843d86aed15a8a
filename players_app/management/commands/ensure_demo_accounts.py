"""Make sure the development demo accounts exist (used by `make run`; refuses DEBUG=0)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from players_app.models import Player
from players_app.services import player_create

DEMO_ACCOUNTS = [
    # username, password, staff/superuser
    ("admin", "admin-demo-pass", True),
    ("player", "player-demo-pass", False),
]


class Command(BaseCommand):
    help = "Create the demo staff account and demo player if missing (development only) and print them."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo accounts are for development only (DEBUG is off).")
        for username, password, staff in DEMO_ACCOUNTS:
            if Player.objects.filter(username=username).exists():
                state = "exists"
            else:
                player_create(username=username, password=password, is_staff=staff, is_superuser=staff)
                state = "created"
            role = "staff superuser" if staff else "player"
            self.stdout.write(f"  {role:17} {username} / {password}  ({state})")
