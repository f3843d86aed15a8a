"""Fill the database with demo data (idempotent: `make run` calls it on every start)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from sessions_app import demo
from sessions_project.commands import non_negative_int, positive_int


class Command(BaseCommand):
    help = (
        "Create demo data: players (demo-player-00001...), a game server account, a song catalog, "
        "and sessions of every status and visibility with teams, members, invites, reservations and "
        "scores. Idempotent: a second run adds nothing it already made, and a larger --sessions adds "
        "only the missing sessions. Live demo sessions never go idle. Demo players have no password: "
        "use `issue_token demo-player-00001`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--players", type=positive_int, default=40, help="Demo players (default 40).")
        parser.add_argument(
            "--sessions", type=non_negative_int, default=300, help="Demo sessions (default 300; 100000 takes seconds)."
        )

    def handle(self, *args: Any, players: int, sessions: int, verbosity: int, **options: Any) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            if verbosity >= 1 and total > demo.CHUNK:
                self.stdout.write(f"… {done}/{total} sessions checked")

        try:
            counts = demo.seed_demo(players=players, sessions=sessions, progress=progress)
        except DatabaseError as exc:
            raise CommandError(f"Could not seed the demo data: {exc}") from exc
        if verbosity < 1:
            return
        elapsed = time.monotonic() - started
        if any(counts.values()):
            made = ", ".join(f"{count} {name}" for name, count in counts.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data: created {made} in {elapsed:.1f} s."))
        else:
            self.stdout.write(f"Demo data: {players} players and {sessions} sessions were already there.")
        self.stdout.write(
            f"Passworded demo sessions take the join password {demo.JOIN_PASSWORD!r}; "
            f"for a token: manage.py issue_token {demo.player_username(0)}"
        )
