"""What the service holds right now: sessions by status, type and visibility, and players."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from sessions_app.services.lifecycle import session_stats


class Command(BaseCommand):
    help = (
        "Print session counts by status (as of now: a session past its closesAt or idle deadline "
        "counts as closed), type and visibility; members and distinct players in live sessions; and "
        "the average fill (members / numTeams x teamSize) of live sessions with a capacity."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object instead of a table."
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        try:
            stats = session_stats()
        except DatabaseError as exc:
            raise CommandError(f"Could not read the sessions: {exc}") from exc
        if as_json:
            self.stdout.write(json.dumps(stats, indent=2, sort_keys=True))
            return
        write = self.stdout.write
        write(self.style.MIGRATE_HEADING(f"Sessions: {stats['sessions']}"))
        for title, counts in (
            ("by status", stats["by_status"]),
            ("by type", stats["by_type"]),
            ("by visibility", stats["by_visibility"]),
        ):
            write(f"  {title}:")
            for name, count in counts.items():
                write(f"    {name:<20} {count:>10}")
        write(self.style.MIGRATE_HEADING("Players"))
        write(f"  {'live sessions':<22} {stats['live_sessions']:>10}")
        write(f"  {'members in them':<22} {stats['members_in_live_sessions']:>10}")
        write(f"  {'distinct players':<22} {stats['players_in_live_sessions']:>10}")
        average = stats["average_fill"]
        fill = "n/a" if average is None else f"{average:.1%}"
        write(
            f"  {'average fill':<22} {fill:>10}  (of {stats['sessions_with_capacity']} live sessions with a capacity)"
        )
