"""Free places: capacity minus members minus active reservations; None without a capacity.

The row holds all it takes: `users_doc` (the members) and `reservations_doc` (each reservation
row's holder and expiry, kept by the services with the rows under the session's lock). An
expired reservation frees its place at once, by time alone, so the count of active ones is
taken as of `now`, in Python for a document and in SQL for a filter or a sort. Expiries are
compared as the ISO text of `times.iso` (to the millisecond), as invites' are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import F
from django.db.models.expressions import Expression

from sessions_project.times import iso

SqlBuilder = Callable[[str, dict[str, str], Any], tuple[str, list[Any]]]


class ColumnSQL(Expression):
    """SQL written per database over some of the session row's columns: `build(vendor,
    {column: its SQL}, connection)` answers (sql, params)."""

    def __init__(self, build: SqlBuilder, columns: tuple[str, ...], output_field: models.Field[Any, Any]) -> None:
        super().__init__(output_field=output_field)
        self.build = build
        self.columns = columns
        self.sources: list[Any] = [F(column) for column in columns]

    def get_source_expressions(self) -> list[Any]:
        return self.sources

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.sources = list(exprs)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        compiled: dict[str, str] = {}
        params: list[Any] = []
        for column, source in zip(self.columns, self.sources, strict=True):
            sql, source_params = compiler.compile(source)
            compiled[column] = sql
            params.extend(source_params)
        sql, own = self.build(connection.vendor, compiled, connection)
        return sql, [*params, *own]


def _open_places(vendor: str, c: dict[str, str], connection: Any) -> tuple[str, list[Any]]:
    length = "jsonb_array_length" if vendor == "postgresql" else "json_array_length"
    return (
        f"(CASE WHEN {c['num_teams']} > 0 AND {c['team_size']} > 0"
        f" THEN {c['num_teams']} * {c['team_size']} - {length}({c['users_doc']}) ELSE NULL END)",
        [],
    )


def open_places() -> ColumnSQL:
    """Capacity minus members (no reservation counted): what a document's row carries, the
    reservations being subtracted as of now in Python (`free_places`)."""
    return ColumnSQL(_open_places, ("num_teams", "team_size", "users_doc"), models.IntegerField())


def _active_reservations(vendor: str, doc: str, connection: Any, now: datetime) -> tuple[str, list[Any]]:
    at = connection.ops.adapt_datetimefield_value(now)
    if vendor == "postgresql":
        return (
            f"(CASE WHEN jsonb_array_length({doc}) = 0 THEN 0 ELSE (SELECT count(*) FROM"
            f" jsonb_array_elements({doc}) AS held WHERE (held ->> 'expiresAt')::timestamptz > %s) END)",
            [at],
        )
    return (
        f"(CASE WHEN json_array_length({doc}) = 0 THEN 0 ELSE (SELECT count(*) FROM json_each({doc}) AS held"
        f" WHERE json_extract(held.value, '$.expiresAt') > strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', %s)) END)",
        [at],
    )


def free_places_sql(now: datetime) -> ColumnSQL:
    """freePlaces as of `now` in SQL (NULL: no capacity), for filters and sorts."""

    def build(vendor: str, c: dict[str, str], connection: Any) -> tuple[str, list[Any]]:
        members = "jsonb_array_length" if vendor == "postgresql" else "json_array_length"
        held, params = _active_reservations(vendor, c["reservations_doc"], connection, now)
        left = f"{c['num_teams']} * {c['team_size']} - {members}({c['users_doc']}) - {held}"
        greatest = "GREATEST" if vendor == "postgresql" else "MAX"
        return (
            f"(CASE WHEN {c['num_teams']} > 0 AND {c['team_size']} > 0 THEN {greatest}({left}, 0) ELSE NULL END)",
            params,
        )

    return ColumnSQL(build, ("num_teams", "team_size", "users_doc", "reservations_doc"), models.IntegerField())


# Sorting puts a session without a capacity after every number: its key is this.
UNLIMITED = 2**31 - 1


def free_places_sort_key(now: datetime) -> ColumnSQL:
    def build(vendor: str, c: dict[str, str], connection: Any) -> tuple[str, list[Any]]:
        sql, params = free_places_sql(now).build(vendor, c, connection)
        return f"COALESCE({sql}, {UNLIMITED})", params

    return ColumnSQL(build, ("num_teams", "team_size", "users_doc", "reservations_doc"), models.IntegerField())


def active_holders(reservations_doc: list[dict[str, Any]], now: datetime) -> set[str]:
    """The uids of the players whose reservation is active at `now`. Expiries are stored to the
    millisecond (`expiry`), so this comparison of ISO texts agrees with the table's."""
    if not reservations_doc:
        return set()
    now_iso = iso(now)
    return {held["uid"] for held in reservations_doc if held["expiresAt"] > now_iso}


def expiry(at: datetime) -> datetime:
    """A reservation's expiry as stored: to the millisecond, as its `reservations_doc` entry
    writes it, so that the row and the entry expire at the same instant."""
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


def free_places(open_count: int | None, reservations_doc: list[dict[str, Any]], now: datetime) -> int | None:
    """freePlaces from a row's `open_places` (capacity minus members) as of now."""
    if open_count is None:
        return None
    return max(open_count - len(active_holders(reservations_doc, now)), 0)


def capacity_left(num_teams: int, team_size: int, members: int) -> int | None:
    """open_places of an instance (its members in memory)."""
    if num_teams > 0 and team_size > 0:
        return num_teams * team_size - members
    return None
