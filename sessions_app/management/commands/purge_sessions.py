"""Delete sessions closed before a date, with everything that hangs on them, and the session
events and finished webhook deliveries older than the retention (EVENT_RETENTION_DAYS)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from sessions_app.services import webhooks
from sessions_app.services.lifecycle import events_purge, sessions_purge
from sessions_project.commands import moment, positive_int
from sessions_project.times import iso


class Command(BaseCommand):
    help = (
        "Delete the sessions whose closedAt is before DATE (recorded, or a closesAt or idle deadline "
        "that has passed) together with their members, teams, invites, reservations and scores, in "
        "batches, and report how many rows of each kind went. Live sessions are never touched. "
        "Also deletes the session events older than EVENT_RETENTION_DAYS (default 30), whatever "
        "their session's state: a deleted session's events stay until then; and the webhook deliveries "
        "that succeeded or were given up on longer ago than that, with their attempts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--closed-before",
            type=moment,
            required=True,
            metavar="DATE",
            help="YYYY-MM-DD (midnight UTC) or an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument(
            "--batch-size", type=positive_int, default=1000, help="Sessions deleted per transaction (default 1000)."
        )

    def handle(
        self, *args: Any, closed_before: datetime, dry_run: bool, batch_size: int, verbosity: int, **options: Any
    ) -> None:
        def progress(deleted_so_far: int) -> None:
            if verbosity >= 1:
                self.stdout.write(f"… {deleted_so_far} sessions deleted so far")

        try:
            counts = sessions_purge(
                closed_before=closed_before, dry_run=dry_run, batch_size=batch_size, progress=progress
            )
        except DatabaseError as exc:
            raise CommandError(f"Could not purge sessions: {exc}") from exc
        sessions = counts.get("sessions", 0)
        when = iso(closed_before)
        if dry_run:
            self.stdout.write(f"Dry run: would delete {sessions} session(s) closed before {when}:")
        elif sessions:
            self.stdout.write(self.style.SUCCESS(f"Deleted {sessions} session(s) closed before {when}:"))
        else:
            self.stdout.write(f"No session closed before {when}.")
        if sessions or dry_run:
            for label, count in counts.items():
                self.stdout.write(f"  {label}: {count}")
        try:
            old_events = events_purge(dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(f"Could not purge session events: {exc}") from exc
        days = settings.EVENT_RETENTION_DAYS
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {old_events} session event(s) older than {days} day(s).")
        try:
            old_deliveries = webhooks.deliveries_purge(dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(f"Could not purge webhook deliveries: {exc}") from exc
        self.stdout.write(f"{verb} {old_deliveries} webhook delivery(ies) finished more than {days} day(s) ago.")
