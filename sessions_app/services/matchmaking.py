"""Quick join: put the caller into the best session it may join now that matches a set of the
list's filters, or create one (`session_quick_join`), and the one function that applies
those filters (`matching_sessions`).

The best session: one the caller may see, open (as of now), without a password, with a free
place (or a place reserved for the caller) and, when a team is asked for, room in that team;
the fewest free places first (so games fill and start), sessions without a capacity last,
the oldest among equals. The join itself is `membership.session_join`, with every rule and
event of an ordinary join; a create is `sessions.session_create`, with its rules and events.

Racing quick joins with the same filters are serialised while they choose and join or
create: on PostgreSQL by a transaction-level advisory lock keyed by a hash of the normalised
filters (two filter sets that share a hash only wait for each other), on SQLite by its one
writer at a time (transactions begin IMMEDIATE). So no two of them create a session where
one would do, and none chooses a session another has just filled. Other writers (ordinary
joins, quick joins with other filters) may still fill the chosen session between the choice
and its row lock: the join is then refused under the lock and the next candidate is tried.

Lock order: the advisory lock first, then what the join (the session row first) or the
create (the caller's player row first) takes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import (
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone

from sessions_project.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error

from .. import places, search
from ..filters import GameSessionFilterSet
from ..models import LIVE_STATUSES, GameSession, Membership, Reservation, SessionStatus
from . import documents, membership, sessions

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

    from ..permissions import Actor

# The list's filters a quick join takes besides `data.<key>` (GET /sessions's, less paging).
LIST_FILTERS = frozenset(GameSessionFilterSet.base_filters)
# How many of the best candidates one quick join reads: it tries them in order, and only a
# candidate filled by another writer between the choice and its lock sends it to the next.
CANDIDATES = 8
# Above every team a session can have (the API allows 1000): the index is written into SQL.
MAX_TEAM_INDEX = 100_000
# The advisory lock's first key ("QJ"): its own space, apart from every other lock's.
LOCK_CLASS = 0x514A


def normalise_filters(raw: Mapping[str, Any]) -> dict[str, str]:
    """The filters as the list takes them: strings (400 naming `filters.<name>` otherwise),
    an empty one counting as absent, in name order (the serialising lock's key)."""
    normalised: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            message = "A filter's value is a string, as in the list's query string."
            raise InvalidInput(message, errors=[field_error(f"filters.{name}", message, "invalid")])
        if value != "":
            normalised[name] = value
    return dict(sorted(normalised.items()))


def matching_sessions(
    queryset: QuerySet[GameSession], filters: Mapping[str, str], actor: Actor
) -> QuerySet[GameSession]:
    """`queryset` narrowed by the list's filters (name -> value, as GET /sessions takes them):
    the GameSessionFilterSet's (`status`, `visibility`, `hostUid`, `type`, ...) and the search
    parameters (`sessions_app.search`: `data.<key>` with the op(value) operators, the numeric
    and date members, `freePlaces`, `hasPassword`, `joinable`), the same readers as the list's.
    400 naming `filters.<name>`: `unknown_filter` for a name the list does not filter by
    (paging and sorting included), the list's own code for a malformed value."""
    plain: dict[str, str] = {}
    searched: dict[str, str] = {}
    for name, value in filters.items():
        if name in LIST_FILTERS:
            plain[name] = value
        elif search.is_search_parameter(name) and (
            not name.startswith(search.DATA_PREFIX) or search.KEY.fullmatch(name[len(search.DATA_PREFIX) :])
        ):
            searched[name] = value
        else:
            message = f"Unknown filter {name!r}; filters: {', '.join(sorted(LIST_FILTERS | search.NAMES))}, data.<key>."
            raise InvalidInput(
                message, code="unknown_filter", errors=[field_error(f"filters.{name}", message, "unknown_filter")]
            )
    narrowed = queryset
    if plain:
        filterset = GameSessionFilterSet(data=plain, queryset=narrowed)
        if not filterset.is_valid():
            errors = [
                field_error(f"filters.{name}", str(error.message % (error.params or {})), error.code or "invalid")
                for name, problems in filterset.form.errors.as_data().items()
                for error in problems
            ]
            raise InvalidInput(errors[0]["message"], errors=errors)
        narrowed = filterset.qs
    try:
        return search.apply_filters(narrowed, searched, actor=actor)
    except InvalidInput as refused:  # the list's 400, its parameter named as quick join names it
        errors = [{**error, "field": f"filters.{error['field']}"} for error in refused.errors or []]
        raise InvalidInput(f"filters.{refused.detail}", code=refused.code, errors=errors) from None


class _ArrayLength(Func):
    """The length of a JSON array in a column: the whole column, or `column[index].players`."""

    output_field = IntegerField()

    def __init__(self, column: str, team: int | None = None) -> None:
        super().__init__(F(column))
        self.team = team

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _AsSqlType:
        sql, params = compiler.compile(self.source_expressions[0])
        if self.team is not None:
            sql = f"({sql} -> {int(self.team)} -> 'players')"
        return f"jsonb_array_length({sql})", params

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _AsSqlType:
        sql, params = compiler.compile(self.source_expressions[0])
        if self.team is not None:
            return f"json_array_length({sql}, '$[{int(self.team)}].players')", params
        return f"json_array_length({sql})", params


def _candidates(actor: Actor, filters: Mapping[str, str], team: int | None) -> list[GameSession]:
    """The matching live sessions the caller is in (first), then the best it may join now, in
    the quick join's order; at most CANDIDATES. One query: members are counted from the
    rendered `users` and `teams` (as a join counts them), free places by the rule the list's
    `freePlaces` uses (`places.free_places_sql`)."""
    now = timezone.now()
    matching = matching_sessions(GameSession.objects.visible_to(actor), filters, actor)
    active = Reservation.objects.active(now).filter(session=OuterRef("pk")).order_by()
    ranked = (
        matching.filter(Q(status__in=LIVE_STATUSES) & ~GameSession.objects.due_q(now))
        .annotate(
            is_member=Exists(Membership.objects.filter(session=OuterRef("pk"), player_id=actor.id)),
            host_uid=F("host__uid"),
        )
        .alias(
            reserved_mine=Exists(active.filter(player_id=actor.id)),
            free=places.free_places_sql(now),
        )
    )
    joinable = (
        Q(status=SessionStatus.OPEN)
        & Q(password_hash="")
        & (Q(num_teams=0) | Q(team_size=0) | Q(free__gt=0) | Q(reserved_mine=True))
    )
    if team is not None:
        ranked = ranked.alias(team_players=_ArrayLength("teams_doc", team))
        joinable &= Q(num_teams__gt=team) & (Q(team_size=0) | Q(team_players__lt=F("team_size")))
    return list(
        ranked.filter(Q(is_member=True) | joinable).order_by(
            F("is_member").desc(), F("free").asc(nulls_last=True), "date_created", "uid"
        )[:CANDIDATES]
    )


def _serialise(filters: Mapping[str, str]) -> None:
    """Wait for every other quick join with the same filters to commit (see the module
    docstring); nothing to do on SQLite."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)]
        )


def session_quick_join(
    *,
    actor: Actor,
    filters: Mapping[str, Any],
    team: int | None = None,
    create: dict[str, Any] | None = None,
) -> tuple[GameSession, bool]:
    """Join the caller into the best session it may join that matches `filters` (see the
    module docstring), or return the matching live session it is in already; when none,
    create `create` (validated values, as session_create takes them) with the caller as host
    and member, in `team` if given. Returns the session and whether it was created. 404
    `no_match` when nothing matches and there is nothing to create.

    One transaction: the lock (PostgreSQL), the candidates (one query), then the join's or the
    create's own queries; a candidate refused under its lock costs its locked read."""
    normalised = normalise_filters(filters)
    if team is not None and not 0 <= team < MAX_TEAM_INDEX:
        message = f"Team index must be from 0 to {MAX_TEAM_INDEX - 1}."
        raise InvalidInput(message, errors=[field_error("team", message, "invalid_team")])
    with transaction.atomic():
        _serialise(normalised)
        for candidate in _candidates(actor, normalised, team):
            annotated: Any = candidate  # with is_member and host_uid (_candidates)
            if annotated.is_member:
                documents.vouch(candidate, annotated.host_uid)
                return candidate, False
            try:
                joined = membership.session_join(
                    session_id=candidate.pk, actor=actor, team=team, check_visible=True, password_free=True
                )
            except (Conflict, Forbidden, NotFound):
                continue  # filled, closed, hidden or given a password since it was chosen
            return joined, False
        if create is None:
            raise NotFound("No session you may join matches these filters.", code="no_match")
        return sessions.session_create(actor=actor, values=create, creator_team=team), True
