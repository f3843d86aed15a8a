"""Searching sessions: `data.<key>=` and the operator form on members (GET /sessions, its
count and truncate; quick join's `filters`), and the sorts by `freePlaces` and `data.<key>`.

One parameter is one condition: `filter_condition(name, raw, actor=..., now=...)` answers a
Q (or None when the name is not one of these search parameters), or raises the 400
`invalid_filter` naming the parameter. `apply_filters(queryset, params, actor=...)` applies
every search parameter of a query string. The fixed filters of `filters.GameSessionFilterSet`
(status, visibility, ...) stay there.

Values (service-core's form): `eq(v)`, `ne(v)`, `gt(v)`, `gte(v)`, `lt(v)`, `lte(v)`,
`in(a,b,...)`, `nin(a,b,...)`, `range(lo,hi)` (inclusive), `like(text)` (case-insensitive
contains); a bare value is `eq`. A literal that reads as a JSON number, `true`, `false` or
`null` is that; a JSON string in double quotes is always a string; anything else is a string.

`data.<key>` compares type-strictly, on both databases: the JSON type of the stored value is
checked (`jsonb_typeof`, `json_type`) before its value, so a number never equals a string
and `gt(10)` never matches one. A session whose `data` lacks the key matches no condition on
it (`ne` and `nin` included); `ne`/`nin` match a value of another type (it is not equal).
On PostgreSQL `eq` and `in` are containment (`data @> {"key": v}`), which the GIN index on
`data` answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sessions_project.errors import InvalidInput, field_error

from .models import GameSession, Invite, Membership, Reservation, SessionStatus
from .permissions import Actor
from .places import ColumnSQL, free_places_sort_key, free_places_sql

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "range", "like")
DATA_PREFIX = "data."
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_LIST = 100  # values in one in() or nin()
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_CALL = re.compile(r"([A-Za-z]+)\((.*)\)", re.DOTALL)
_ARITY = {"in": (1, MAX_LIST), "nin": (1, MAX_LIST), "range": (2, 2)}

# Members with the operator form: JSON name -> (ORM field, kind).
MEMBERS = {
    "numTeams": ("num_teams", "int"),
    "teamSize": ("team_size", "int"),
    "version": ("version", "int"),
    "dateCreated": ("date_created", "datetime"),
    "dateModified": ("date_modified", "datetime"),
    "closesAt": ("closes_at", "datetime"),
    "freePlaces": ("", "places"),
}
FLAGS = ("hasPassword", "joinable")
# Every fixed name this module reads; `data.<key>` besides. DATA_PLACEHOLDER is how the
# OpenAPI schema (and the declared parameters) name the family.
NAMES = frozenset({*MEMBERS, *FLAGS})
DATA_PLACEHOLDER = "data.<key>"


def is_search_parameter(name: str) -> bool:
    return name in NAMES or name.startswith(DATA_PREFIX)


class SearchParameterNames(frozenset[str]):
    """The declared parameters of a route that searches: its fixed names, DATA_PLACEHOLDER
    among them, and every `data.<key>` (validated by the search itself: 400 naming it)."""

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and name.startswith(DATA_PREFIX))


def invalid(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name}: {message}", code="invalid_filter", errors=[field_error(name, message, "invalid")])


@dataclass(frozen=True)
class Literal:
    """A value of a filter: its JSON type (number, string, boolean, null) and value."""

    kind: str
    value: Any  # Decimal for a number

    def python(self, vendor: str) -> Any:
        """As a database parameter: SQLite compares a Decimal (sent as text) as a string."""
        if self.kind == "number" and vendor != "postgresql":
            integral = self.value == self.value.to_integral_value()
            return int(self.value) if integral and abs(self.value) < 2**63 else float(self.value)
        return self.value

    def json(self) -> Any:
        if self.kind == "number":
            integral = self.value == self.value.to_integral_value() and "e" not in str(self.value).lower()
            return int(self.value) if integral else float(self.value)
        return self.value


def parse_literal(name: str, text: str) -> Literal:
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            raise invalid(name, f"{text} is not a valid quoted string.") from None
        if not isinstance(value, str):
            raise invalid(name, f"{text} is not a valid quoted string.")
        return Literal("string", value)
    if _NUMBER.fullmatch(text):
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern is a valid Decimal
            raise invalid(name, f"{text} is not a number.") from None
        if not number.is_finite() or (number != 0 and not -300 < number.adjusted() < 300):
            raise invalid(name, f"{text} is out of range.")
        return Literal("number", number)
    if text in ("true", "false"):
        return Literal("boolean", text == "true")
    if text == "null":
        return Literal("null", None)
    return Literal("string", text)


def _split(name: str, inside: str) -> list[str]:
    """The comma-separated items of an operator's parentheses; a quoted item may hold commas."""
    items: list[str] = []
    decoder = json.JSONDecoder()
    index, length = 0, len(inside)
    while True:
        while index < length and inside[index] == " ":
            index += 1
        if index < length and inside[index] == '"':
            try:
                _, end = decoder.raw_decode(inside, index)
            except ValueError:
                raise invalid(name, "a quoted value is not closed or not valid JSON.") from None
            items.append(inside[index:end])
            index = end
            while index < length and inside[index] == " ":
                index += 1
            if index < length and inside[index] != ",":
                raise invalid(name, "a quoted value must be followed by a comma or the end.")
        else:
            end = inside.find(",", index)
            end = length if end == -1 else end
            items.append(inside[index:end].rstrip(" "))
            index = end
        if index >= length:
            return items
        index += 1  # the comma


def parse_value(name: str, raw: str) -> tuple[str, list[Literal]]:
    """(operator, literals) of a filter's value."""
    call = _CALL.fullmatch(raw)
    if call is None:
        return "eq", [parse_literal(name, raw)]
    operator = call.group(1)
    if operator not in OPERATORS:
        raise invalid(name, f"unknown operator {operator!r}; use one of: {', '.join(OPERATORS)}.")
    items = _split(name, call.group(2))
    low, high = _ARITY.get(operator, (1, 1))
    if not low <= len(items) <= high:
        wanted = f"{low}" if low == high else f"{low} to {high}"
        raise invalid(name, f"{operator}() takes {wanted} value(s), not {len(items)}.")
    if operator == "like":
        text = items[0]
        return operator, [parse_literal(name, text) if text.startswith('"') else Literal("string", text)]
    literals = [parse_literal(name, item) for item in items]
    if operator in ("gt", "gte", "lt", "lte", "range"):
        kinds = {literal.kind for literal in literals}
        if not kinds <= {"number", "string"} or len(kinds) != 1:
            raise invalid(name, f"{operator}() compares numbers or strings (both bounds of one type).")
    return operator, literals


# --- data.<key> ------------------------------------------------------------------------------

_PG_TYPE = {"number": "number", "string": "string", "boolean": "boolean", "null": "null"}
_SQLITE_TYPES = {"number": "('integer', 'real')", "string": "('text')", "null": "('null')"}
_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _data_condition(key: str, operator: str, literals: list[Literal]) -> ColumnSQL:
    def build(vendor: str, c: dict[str, str], connection: Any) -> tuple[str, list[Any]]:
        data = c["data"]
        if vendor == "postgresql":
            return _pg(data, key, operator, literals)
        return _sqlite(data, key, operator, literals)

    return ColumnSQL(build, ("data",), models.BooleanField())


def _pg(data: str, key: str, operator: str, literals: list[Literal]) -> tuple[str, list[Any]]:
    def contains(literal: Literal) -> tuple[str, list[Any]]:
        return f"({data} @> %s::jsonb)", [json.dumps({key: literal.json()})]

    present = f"({data} -> %s) IS NOT NULL"
    if operator in ("eq", "in", "ne", "nin"):
        parts = [contains(literal) for literal in literals]
        any_sql = "(" + " OR ".join(sql for sql, _ in parts) + ")"
        params = [p for _, ps in parts for p in ps]
        if operator in ("eq", "in"):
            return any_sql, params
        return f"({present} AND NOT {any_sql})", [key, *params]
    kind = "string" if operator == "like" else literals[0].kind
    value = f"({data} ->> %s)" if kind == "string" else f"({data} ->> %s)::numeric"
    if operator == "like":
        test, params = f"{value} ILIKE %s", [key, _like_pattern(literals[0].value)]
    elif operator == "range":
        collate = ' COLLATE "C"' if kind == "string" else ""
        test = f"{value}{collate} >= %s AND {value}{collate} <= %s"
        params = [key, literals[0].value, key, literals[1].value]
    else:
        collate = ' COLLATE "C"' if kind == "string" else ""
        test, params = f"{value}{collate} {_COMPARE[operator]} %s", [key, literals[0].value]
    # CASE: the cast runs only on a value of the right type (AND does not promise an order).
    return f"(CASE WHEN jsonb_typeof({data} -> %s) = '{_PG_TYPE[kind]}' THEN {test} ELSE false END)", [key, *params]


def _sqlite(data: str, key: str, operator: str, literals: list[Literal]) -> tuple[str, list[Any]]:
    path = f'$."{key}"'
    kind_of = f"json_type({data}, %s)"
    value = f"json_extract({data}, %s)"

    def equals(literal: Literal) -> tuple[str, list[Any]]:
        if literal.kind == "boolean":
            return f"({kind_of} = %s)", [path, "true" if literal.value else "false"]
        if literal.kind == "null":
            return f"({kind_of} = 'null')", [path]
        return (
            f"({kind_of} IN {_SQLITE_TYPES[literal.kind]} AND {value} = %s)",
            [path, path, literal.python("sqlite")],
        )

    if operator in ("eq", "in", "ne", "nin"):
        parts = [equals(literal) for literal in literals]
        any_sql = "(" + " OR ".join(sql for sql, _ in parts) + ")"
        params = [p for _, ps in parts for p in ps]
        if operator in ("eq", "in"):
            return any_sql, params
        return f"({kind_of} IS NOT NULL AND NOT {any_sql})", [path, *params]
    kind = "string" if operator == "like" else literals[0].kind
    if operator == "like":
        test, params = f"{value} LIKE %s ESCAPE '\\'", [path, _like_pattern(literals[0].value)]
    elif operator == "range":
        test = f"{value} >= %s AND {value} <= %s"
        params = [path, literals[0].python("sqlite"), path, literals[1].python("sqlite")]
    else:
        test, params = f"{value} {_COMPARE[operator]} %s", [path, literals[0].python("sqlite")]
    return f"({kind_of} IN {_SQLITE_TYPES[kind]} AND {test})", [path, *params]


def data_key(name: str) -> str:
    key = name[len(DATA_PREFIX) :]
    if not KEY.fullmatch(key):
        raise invalid(name, "a data key is 1 to 64 letters, digits, _ or -.")
    return key


# --- members ---------------------------------------------------------------------------------


def _member_value(name: str, kind: str, literal: Literal) -> Any:
    if literal.kind == "null" and kind in ("places", "datetime"):
        if kind == "datetime" and name != "closesAt":
            raise invalid(name, f"{name} is never null.")
        return None
    if kind in ("int", "places"):
        value = literal.value
        if literal.kind != "number" or value != value.to_integral_value():
            raise invalid(name, "use a whole number.")
        if abs(value) >= 2**63:
            raise invalid(name, "the number is out of range.")
        return int(value)
    if literal.kind != "string":
        raise invalid(name, "use a date and time, e.g. 2026-11-30T12:00:00Z.")
    try:
        moment = parse_datetime(literal.value)
    except ValueError:
        moment = None
    if moment is None:
        raise invalid(name, f"{literal.value!r} is not a date and time (ISO 8601).")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_LOOKUPS = {"eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


def _member_condition(name: str, operator: str, literals: list[Literal], now: datetime) -> Q:
    field, kind = MEMBERS[name]
    if operator == "like":
        raise invalid(name, "like() works on data only.")
    values = [_member_value(name, kind, literal) for literal in literals]
    if operator in ("gt", "gte", "lt", "lte", "range") and None in values:
        raise invalid(name, f"{operator}() needs a value, not null.")
    lhs: Any = free_places_sql(now) if kind == "places" else models.F(field)
    # Unlimited (NULL) free places are above every number: in every lower bound, no upper one.
    unlimited_counts = kind == "places"

    def compare(operator: str, value: Any) -> Q:
        if value is None:
            return Q(IsNull(lhs, True))
        condition = Q(_LOOKUPS[operator](lhs, value))
        if unlimited_counts and operator in ("gt", "gte"):
            return condition | Q(IsNull(lhs, True))
        return condition

    if operator in ("eq", "in"):
        condition = Q()
        for value in values:
            condition |= compare("eq", value)
        return condition
    if operator in ("ne", "nin"):
        # Not equal to any: a NULL (no capacity, no closesAt) is not equal to a number either.
        condition = Q()
        for value in values:
            condition &= ~compare("eq", value) if value is None else (~compare("eq", value) | Q(IsNull(lhs, True)))
        return condition
    if operator == "range":
        return compare("gte", values[0]) & compare("lte", values[1])
    return compare(operator, values[0])


def _boolean(name: str, raw: str) -> bool:
    if raw in ("true", "false"):
        return raw == "true"
    raise invalid(name, "use true or false.")


def joinable_q(actor: Actor, now: datetime) -> Q:
    """Open sessions the caller is not in and could join now: a free place (or one reserved
    for it), and no password unless it holds a pending invite or a reservation there (what
    services.membership.session_join lets through; capacity, status and password alike)."""
    reserved = Exists(Reservation.objects.active(now).filter(session=OuterRef("pk"), player_id=actor.id))
    invited = Exists(Invite.objects.pending(now).filter(session=OuterRef("pk"), player_id=actor.id))
    member = Exists(Membership.objects.filter(session=OuterRef("pk"), player_id=actor.id))
    places = free_places_sql(now)
    return (
        Q(status=SessionStatus.OPEN)
        & ~GameSession.objects.due_q(now)
        & ~Q(member)
        & (Q(IsNull(places, True)) | Q(GreaterThan(places, 0)) | Q(reserved))
        & (Q(password_hash="") | Q(invited) | Q(reserved))
    )


def filter_condition(name: str, raw: str, *, actor: Actor, now: datetime) -> Q | None:
    """The condition of one search parameter, or None when `name` is not one."""
    if raw == "":
        return None  # as every optional query parameter of the API: empty is absent
    if name.startswith(DATA_PREFIX):
        key = data_key(name)
        operator, literals = parse_value(name, raw)
        return Q(_data_condition(key, operator, literals))
    if name in MEMBERS:
        operator, literals = parse_value(name, raw)
        return _member_condition(name, operator, literals, now)
    if name == "hasPassword":
        return ~Q(password_hash="") if _boolean(name, raw) else Q(password_hash="")
    if name == "joinable":
        if raw != "true":
            raise invalid(name, "joinable takes only true.")
        return joinable_q(actor, now)
    return None


def apply_filters(
    queryset: QuerySet[GameSession], params: Mapping[str, str], *, actor: Actor, now: datetime | None = None
) -> QuerySet[GameSession]:
    """`queryset` narrowed by every search parameter in `params` (AND); other names are left
    to their own readers. 400 `invalid_filter` naming the first bad one."""
    now = now or timezone.now()
    for name in params:
        condition = filter_condition(name, params[name], actor=actor, now=now)
        if condition is not None:
            queryset = queryset.filter(condition)
    return queryset


# --- sorting ---------------------------------------------------------------------------------

FREE_PLACES_SORT = "free_places_key"
_DATA_SORT = "data_sort_"  # + hex of the key; + one of the parts below


def data_sort_names(key: str) -> list[str]:
    """The annotations a sort by data.<key> orders by: the value's type rank (numbers,
    strings, booleans, null, objects and arrays, then sessions without the key), then its
    number (booleans as 0 and 1), then its text."""
    token = key.encode().hex()
    return [f"{_DATA_SORT}rank_{token}", f"{_DATA_SORT}number_{token}", f"{_DATA_SORT}text_{token}"]


def _data_sort_expression(part: str, key: str) -> ColumnSQL:
    def build(vendor: str, c: dict[str, str], connection: Any) -> tuple[str, list[Any]]:
        data = c["data"]
        if vendor == "postgresql":
            typed = f"jsonb_typeof({data} -> %s)"
            if part == "rank":
                return (
                    f"(CASE {typed} WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2"
                    " WHEN 'null' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 5 END)",
                    [key],
                )
            if part == "number":
                return (
                    f"(CASE {typed} WHEN 'number' THEN ({data} ->> %s)::numeric"
                    f" WHEN 'boolean' THEN (CASE WHEN ({data} ->> %s) = 'true' THEN 1 ELSE 0 END) ELSE NULL END)",
                    [key, key, key],
                )
            return f"(CASE {typed} WHEN 'string' THEN ({data} ->> %s) COLLATE \"C\" ELSE NULL END)", [key, key]
        path = f'$."{key}"'
        typed = f"json_type({data}, %s)"
        if part == "rank":
            return (
                f"(CASE {typed} WHEN 'integer' THEN 0 WHEN 'real' THEN 0 WHEN 'text' THEN 1 WHEN 'true' THEN 2"
                " WHEN 'false' THEN 2 WHEN 'null' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 5 END)",
                [path],
            )
        if part == "number":
            return f"(CASE WHEN {typed} IN ('integer', 'real', 'true', 'false') THEN json_extract({data}, %s) END)", [
                path,
                path,
            ]
        return f"(CASE WHEN {typed} = 'text' THEN json_extract({data}, %s) END)", [path, path]

    field: models.Field[Any, Any]
    if part == "rank":
        field = models.IntegerField()
    elif part == "number":
        field = models.FloatField()
    else:
        field = models.TextField()
    return ColumnSQL(build, ("data",), field)


def sort_annotations(queryset: QuerySet[Any], ordering: Sequence[str], now: datetime) -> Any:
    """`queryset` with the annotations `ordering` names (parse_sort's freePlaces and data sorts)."""
    for item in ordering:
        name = item.lstrip("-")
        if name == FREE_PLACES_SORT:
            queryset = queryset.annotate(**{name: free_places_sort_key(now)})
        elif name.startswith(_DATA_SORT):
            part, token = name[len(_DATA_SORT) :].split("_", 1)
            queryset = queryset.annotate(**{name: _data_sort_expression(part, bytes.fromhex(token).decode())})
    return queryset


def is_annotated_sort(ordering: Sequence[str]) -> bool:
    return any(item.lstrip("-") == FREE_PLACES_SORT or item.lstrip("-").startswith(_DATA_SORT) for item in ordering)
