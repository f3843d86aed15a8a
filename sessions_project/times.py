"""The API's one time format."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, e.g. 2026-11-22T18:49:22.123Z. Strings in
    this format also compare correctly as text (used for rendered invite expiries)."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:  # values read from the database are already in UTC
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
