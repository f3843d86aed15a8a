"""Cursor paging of GET /sessions: keyset on the list's order (parse_sort's, always ending in
uid), carried in an opaque cursor signed with the project's key (django.core.signing).

A cursor holds the sort values of the last row of a page and a fingerprint of the request's
sort and filters. The next page is the rows strictly after those values in the order (one
condition: `after_q`), so whatever is created or deleted meanwhile, a session that stays
where it was is seen exactly once; a session whose sort value changes may move past the
cursor or back behind it (keyset paging cannot follow it). The leading member also bounds
the walk (`>=`/`<=` its value), so an index in the list's order starts at the cursor: page
5,000 reads what page 1 reads.

NULL sorts as PostgreSQL and SQLite put it by default: largest on PostgreSQL (last ASC, first
DESC), smallest on SQLite. Only closesAt and the parts of a data.<key> sort can be NULL.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from sessions_project.errors import InvalidInput, field_error

SALT = "sessions_app.cursor"
PAGING = frozenset({"limit", "skip", "cursor"})
# Sort names (parse_sort's) whose value may be NULL.
_NULLABLE_PREFIXES = ("data_sort_number_", "data_sort_text_")
_NULLABLE = frozenset({"closes_at"})


def _refused(code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code, errors=[field_error("cursor", message, code)])


def fingerprint(ordering: Sequence[str], params: Any) -> str:
    """What a cursor must be used with: the order and every parameter but the paging ones."""
    # sort is in as `ordering` (its meaning: spacing inside the JSON does not matter).
    chosen = sorted(
        (name, value) for name in params if name not in PAGING and name != "sort" for value in params.getlist(name)
    )
    raw = json.dumps([list(ordering), chosen], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    (kind, text), *rest = value.items()
    if rest or not isinstance(text, str):
        raise ValueError("a cursor value holds one typed member")
    if kind == "d":
        moment = parse_datetime(text)
        if moment is None:
            raise ValueError("not a datetime")
        return moment
    if kind == "n":
        return Decimal(text)
    if kind == "u":
        return uuid.UUID(text)
    raise ValueError("unknown cursor value type")


def sort_names(ordering: Sequence[str]) -> list[str]:
    return [item.lstrip("-") for item in ordering]


def encode(ordering: Sequence[str], row: dict[str, Any], print_: str) -> str:
    """The cursor after `row` (a row holding every member of `ordering`)."""
    values = [_encode_value(row[name]) for name in sort_names(ordering)]
    return signing.dumps({"f": print_, "k": values}, salt=SALT, compress=True)


def decode(raw: str, ordering: Sequence[str], print_: str) -> list[Any]:
    """The sort values a cursor holds; 400 invalid_cursor when it was not made here (or was
    changed), cursor_mismatch when it was made for another sort or other filters."""
    try:
        payload = signing.loads(raw, salt=SALT)
    except signing.BadSignature:
        raise _refused("invalid_cursor", "The cursor is not one this server made (or it was changed).") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
        raise _refused("invalid_cursor", "The cursor is not one this server made.")
    if payload.get("f") != print_ or len(payload["k"]) != len(ordering):
        raise _refused(
            "cursor_mismatch", "The cursor was made for another sort or other filters; only limit may change."
        )
    try:
        return [_decode_value(value) for value in payload["k"]]
    except (ValueError, AttributeError):
        raise _refused("invalid_cursor", "The cursor is not one this server made.") from None


def _nullable(name: str) -> bool:
    return name in _NULLABLE or name.startswith(_NULLABLE_PREFIXES)


def _nothing() -> Q:
    return Q(pk__in=[])


def _equal(name: str, value: Any) -> Q:
    return Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})


def _beyond(name: str, value: Any, *, greater: bool, nulls_largest: bool) -> Q:
    """Rows whose `name` is strictly greater (or less) than `value`, NULL placed as the
    database orders it."""
    nullable = _nullable(name)
    null_is_beyond = nulls_largest == greater  # NULL is past every value in this direction
    if value is None:
        return _nothing() if null_is_beyond else Q(**{f"{name}__isnull": False})
    condition = Q(**{f"{name}__{'gt' if greater else 'lt'}": value})
    if nullable and null_is_beyond:
        condition |= Q(**{f"{name}__isnull": True})
    return condition


def after_q(ordering: Sequence[str], values: Sequence[Any], vendor: str) -> Q:
    """The rows strictly after `values` in `ordering` (over names the page's queryset has:
    columns, or the annotations lists.ordered_page adds)."""
    nulls_largest = vendor == "postgresql"
    condition = _nothing()
    same = Q()
    for item, value in zip(ordering, values, strict=True):
        name, descending = item.lstrip("-"), item.startswith("-")
        condition |= same & _beyond(name, value, greater=not descending, nulls_largest=nulls_largest)
        same &= _equal(name, value)
    first, descending = ordering[0].lstrip("-"), ordering[0].startswith("-")
    if values[0] is not None and not _nullable(first):
        # Redundant, for the index: the walk starts at the cursor instead of filtering up to it.
        condition &= Q(**{f"{first}__{'lte' if descending else 'gte'}": values[0]})
    return condition
