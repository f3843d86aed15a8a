"""Typed arguments shared by the management commands of every app: argparse reports a bad
value as a usage error (exit status 2 from the shell, CommandError from call_command)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime


def _whole_number(raw: str, minimum: int, at_least: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{raw!r} must be {at_least}")
    return value


def positive_int(raw: str) -> int:
    return _whole_number(raw, 1, "at least 1")


def non_negative_int(raw: str) -> int:
    return _whole_number(raw, 0, "0 or more")


def moment(raw: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 date and time (UTC unless it names an offset)."""
    try:
        parsed = parse_datetime(raw)
        day = None if parsed else parse_date(raw)
    except ValueError:  # well formed but impossible, e.g. 2026-02-30
        parsed = day = None
    if parsed is None:
        if day is None:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time")
        parsed = datetime.combine(day, time.min)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
