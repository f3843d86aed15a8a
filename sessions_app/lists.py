"""The session list's page and count (GET /sessions and /sessions/count without filters),
as prepared reads.

A page of the list is the same query for every caller and moment but for two parameters,
the caller's id (in the visibility rule) and `now` (the rule's expiry checks, and the status
as of now when the list is sorted by it); its shape is set by the sort, the caller's scope
and the page's limit and skip (written into the SQL by Django). Compiling it cost a fifth of
a page of 100 (`sessions_project.prepared`), so each shape is compiled once per thread and
database, and the most recently used shapes are kept. Lists with filters (django-filter
builds a form per request anyway) take the ORM path, through the same queryset code.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet

from sessions_project.pagination import page_slice
from sessions_project.prepared import Parameter, PreparedRows

from .models import SCOPE_ANY, GameSession, perm, visibility_q
from .permissions import Actor
from .reads import visible_count_parts

SHAPES_KEPT = 256
# JSON columns a list answers as they are stored (see PreparedRows' raw_json): a list reads
# nothing inside them (its visibility rule is in the SQL).
PASSED_THROUGH = frozenset({"data", "users_doc", "teams_doc"})

_PLAYER = Parameter(lambda value, connection: value, (-7_000_001, -7_000_002))
_NOW = Parameter(
    lambda value, connection: connection.ops.adapt_datetimefield_value(value),
    (datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC), datetime(2002, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)),
)

_shapes: OrderedDict[tuple[Any, ...], PreparedRows] = OrderedDict()
_shapes_lock = threading.Lock()


def page_queryset(
    columns: Sequence[str], *, player_id: int | None, now: datetime, ordering: Sequence[str], limit: int, skip: int
) -> QuerySet[GameSession, dict[str, Any]]:
    """One page of the list as a values() queryset: visible to `player_id` (every session
    when None: a session:* caller), in `ordering`, `limit` rows after `skip`."""
    sessions = GameSession.objects.all()
    if player_id is not None:
        sessions = sessions.filter(visibility_q(player_id, now))
    if "status_now" in ordering or "-status_now" in ordering:
        sessions = sessions.with_effective_status(now)
    # deferred: a deep skip steps over the page's keys alone (parse_sort's order is total).
    return page_slice(sessions.order_by(*ordering).values(*columns), limit, skip, deferred=True)


def session_page(
    user: Actor, columns: tuple[str, ...], *, ordering: Sequence[str], limit: int, skip: int, now: datetime
) -> list[dict[str, Any]]:
    """The rows of one page of the list for this caller, through the prepared read of its shape."""
    every_session = user.has_perm(perm(SCOPE_ANY))
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
        return page_queryset(
            columns, player_id=None if every_session else player_id, now=now, ordering=ordering, limit=limit, skip=skip
        )

    return PreparedRows(build, _PLAYER, _NOW, raw_json=PASSED_THROUGH)
