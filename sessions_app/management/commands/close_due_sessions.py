"""The sweeper: record every close that time has made (closesAt or idle deadline passed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from sessions_app.services import lifecycle
from sessions_project.commands import positive_int
from sessions_project.times import iso


class Command(BaseCommand):
    help = (
        "Close every session past its closesAt or its idle deadline and print what was closed. "
        "Idempotent, and safe to run from cron on several hosts at once (rows another run holds are "
        "skipped). Sessions read as closed from their deadline on whether or not this has run; it "
        "records closedAt and never moves a session's version. Also deletes expired reservations and "
        "marks expired invites."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=500,
            help="Sessions closed per transaction (default 500).",
        )

    def handle(self, *args: Any, batch_size: int, verbosity: int, **options: Any) -> None:
        def progress(closed_so_far: int) -> None:
            if verbosity >= 1 and closed_so_far >= batch_size:
                self.stdout.write(f"… {closed_so_far} closed so far")

        try:
            closed = lifecycle.close_due_sessions(batch_size=batch_size, progress=progress)
        except DatabaseError as exc:
            raise CommandError(f"Could not close due sessions: {exc}") from exc
        if verbosity >= 1:
            for session in closed:
                reason = "closesAt passed" if session.closed_at == session.closes_at else "idle"
                self.stdout.write(f"closed {session.uid} at {iso(session.closed_at)} ({reason})")
            if closed:
                self.stdout.write(self.style.SUCCESS(f"Closed {len(closed)} session(s)."))
            else:
                self.stdout.write("No session was due.")
