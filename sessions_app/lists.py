"""The session list's page and count (GET /sessions and /sessions/count without filters),
as prepared reads.

A page of the list is the same query for every caller and moment but for two parameters,
the caller's id (in the visibility rule) and `now` (the rule's expiry checks, and the status
as of now when the list is sorted by it); its shape is set by the sort, the caller's scope
and the page's limit and skip (written into the SQL by Django). Compiling it cost a fifth of
a page of 100 (`sessions_project.prepared`), so each shape is compiled once per thread and
database, and the most recently used shapes are kept. Lists with filters (django-filter
builds a form per request anyway) and pages after a cursor (its values are in the SQL) take
the ORM path, through the same queryset code (`ordered_page`, which also reads a page sorted
by status or visibility from parts).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet

from sessions_project import pagination
from sessions_project.pagination import page_slice
from sessions_project.prepared import Parameter, PreparedRows

from .models import (
    LIVE_STATUSES,
    SCOPE_ANY,
    GameSession,
    GameSessionQuerySet,
    SessionStatus,
    Visibility,
    perm,
    visibility_q,
)
from .permissions import Actor
from .places import open_places
from .reads import visible_count_parts
from .search import sort_annotations

SHAPES_KEPT = 256
# JSON columns a list answers as they are stored (see PreparedRows' raw_json): a list reads
# nothing inside them (its visibility rule is in the SQL). `users` is answered as stored too,
# but read as text first: the join code's rule looks for the caller in it (session_document).
PASSED_THROUGH = frozenset({"data", "teams_doc"})
AS_TEXT = frozenset({"users_doc"})

_PLAYER = Parameter(lambda value, connection: value, (-7_000_001, -7_000_002))
_NOW = Parameter(
    lambda value, connection: connection.ops.adapt_datetimefield_value(value),
    (datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC), datetime(2002, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)),
)

_shapes: OrderedDict[tuple[Any, ...], PreparedRows] = OrderedDict()
_shapes_lock = threading.Lock()


def ordered_page(
    sessions: GameSessionQuerySet,
    columns: Sequence[str],
    *,
    player_id: int | None,
    now: datetime,
    ordering: Sequence[str],
    limit: int,
    skip: int,
    after: Q | None = None,
) -> QuerySet[GameSession, dict[str, Any]]:
    """One page of `sessions` (all, or those the list's filters select) as a values()
    queryset: the ones visible to `player_id` (every one when None: a session:* caller), in
    `ordering` (parse_sort's: total, ending in uid), `limit` rows after `skip`. The one rule
    for the list with and without filters.

    Most orders are an index walk stopped by the LIMIT. Two first members are not, and take
    the page from parts instead (`_leading_parts`): each part holds one value of the first
    member, so it is ordered by the rest of `ordering` alone (an index walk again), and only
    its first skip + limit rows can be on the page; their UNION ALL, ordered and sliced as
    the whole, is the same page (its rows also hold the order's members: `status_now`). Not
    on SQLite (no ORDER BY or LIMIT inside a compound query), nor for a deep skip: each part
    would read skip + limit whole rows (at skip 10,000 slower than the deferred page, which
    steps over keys: pagination.page_slice). Every argument but the shape (`columns`,
    `ordering`, `limit`, `skip`) reaches the SQL as a parameter: PreparedRows compiles it.
    `after` (a cursor's keyset condition, cursor.after_q) keeps the rows after the cursor; it
    names the order's members, annotated here first."""
    status_sorted = "status_now" in ordering or "-status_now" in ordering
    sessions = sort_annotations(sessions, ordering, now)
    if "open_places" in columns:
        sessions = sessions.annotate(open_places=open_places())
    compound = (
        skip < pagination.DEFERRED_FROM and connections[sessions.db].features.supports_slicing_ordering_in_compound
    )
    parts = _leading_parts(sessions, player_id, now, ordering[0]) if compound else None
    if parts is None:
        if player_id is not None:
            sessions = sessions.filter(visibility_q(player_id, now))
        if status_sorted:
            sessions = sessions.with_effective_status(now)
        if after is not None:
            sessions = sessions.filter(after)
        # deferred: a deep skip steps over the page's keys alone (parse_sort's order is total).
        return page_slice(sessions.order_by(*ordering).values(*columns), limit, skip, deferred=True)
    # A compound query is ordered by columns of its rows: each member of `ordering` is one.
    selected = [*columns, *(name for name in (o.lstrip("-") for o in ordering) if name not in columns)]
    if status_sorted:
        parts = [part.with_effective_status(now) for part in parts]
    if after is not None:
        parts = [part.filter(after) for part in parts]
    pages = [part.order_by(*ordering[1:]).values(*selected)[: skip + limit] for part in parts]
    page: QuerySet[GameSession, dict[str, Any]] = pages[0].union(*pages[1:], all=True)
    return page.order_by(*ordering)[skip : skip + limit]


def _leading_parts(
    sessions: GameSessionQuerySet, player_id: int | None, now: datetime, first: str
) -> list[GameSessionQuerySet] | None:
    """The sessions visible to `player_id`, split into disjoint parts in each of which the
    first member of the order, `first`, has one value; None when one ordered query serves.

    status: the status as of now (`status_now`) is no column, so no index holds it. The
    closed sessions and the due ones (live, past closesAt or the idle deadline, not swept
    yet) read as closed; every other one reads as its status: one part per status. Each
    part is a walk of the rest of the order's index, filtered (or, for a rare status, its
    few rows from the status indexes, sorted: the planner picks by the statistics).
    visibility, for a caller that sees only some sessions: the private sessions it is tied
    to (few: a semi-join of their ids) and the public ones. One ordered walk would step over
    every private session the caller may not see before the public ones (visibility ASC).
    A session:* caller's walk filters nothing: it needs no parts.
    """
    if first.lstrip("-") == "status_now":
        visible = sessions if player_id is None else sessions.filter(visibility_q(player_id, now))
        due = sessions.due_q(now)
        return [
            visible.filter(Q(status=SessionStatus.CLOSED) | due),
            *(visible.filter(Q(status=status) & ~due) for status in LIVE_STATUSES),
        ]
    if first.lstrip("-") == "visibility" and player_id is not None:
        return [
            sessions.filter(Q(visibility=Visibility.PRIVATE) & visibility_q(player_id, now, public=False)),
            sessions.filter(visibility=Visibility.PUBLIC),
        ]
    return None


def viewer_id(user: Actor) -> int | None:
    """The caller's id for the visibility rule; None for a session:* caller (sees every session)."""
    return None if user.has_perm(perm(SCOPE_ANY)) else user.id


def session_page(
    user: Actor, columns: tuple[str, ...], *, ordering: Sequence[str], limit: int, skip: int, now: datetime
) -> list[dict[str, Any]]:
    """The rows of one page of the list for this caller, through the prepared read of its shape."""
    every_session = viewer_id(user) is None
    key = (every_session, columns, tuple(ordering), limit, skip)
    with _shapes_lock:
        prepared = _shapes.get(key)
        if prepared is None:
            prepared = _shapes[key] = _prepare(every_session, columns, tuple(ordering), limit, skip)
            if len(_shapes) > SHAPES_KEPT:
                _shapes.popitem(last=False)
        else:
            _shapes.move_to_end(key)
    return prepared.rows(user.id, now)


def session_count(user: Actor, *, now: datetime) -> int:
    """GET /sessions/count without filters (reads.count_visible), through a prepared read."""
    every_session = user.has_perm(perm(SCOPE_ANY))
    prepared = _COUNTS[every_session]
    return sum(row["n"] for row in prepared.rows(user.id, now))


def _prepare_count(every_session: bool) -> PreparedRows:
    def build(player_id: int, now: datetime) -> QuerySet[GameSession, dict[str, Any]]:
        return visible_count_parts(GameSession.objects.all(), None if every_session else player_id, now)

    return PreparedRows(build, _PLAYER, _NOW)


_COUNTS = {every_session: _prepare_count(every_session) for every_session in (False, True)}


def _prepare(
    every_session: bool, columns: tuple[str, ...], ordering: tuple[str, ...], limit: int, skip: int
) -> PreparedRows:
    def build(player_id: int, now: datetime) -> QuerySet[GameSession, dict[str, Any]]:
        return ordered_page(
            GameSession.objects.all(),
            columns,
            player_id=None if every_session else player_id,
            now=now,
            ordering=ordering,
            limit=limit,
            skip=skip,
        )

    return PreparedRows(build, _PLAYER, _NOW, raw_json=PASSED_THROUGH, raw_text=AS_TEXT)
