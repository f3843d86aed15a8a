"""Filters and the seed's `sort` object for GET /sessions and /sessions/count; catalog filters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.utils import translate_validation

from sessions_project.errors import InvalidInput, field_error

from . import search
from .models import Chart, GameSession, Membership, SessionStatus, Song, Visibility
from .permissions import Actor


class StrictBooleanField(forms.Field):
    """`true` or `false`, the API's query-string booleans; anything else is a 400, not ignored."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        lowered = str(value).lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise forms.ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    # The stubs want a NullBooleanField; its widget would read "yes" or "1" as a boolean before
    # StrictBooleanField could refuse them. django-filter takes any form field class.
    field_class = StrictBooleanField  # type: ignore[assignment]


class GameSessionFilterSet(django_filters.FilterSet):
    """status filters on the status as of now (a session past closesAt reads as closed)."""

    status = django_filters.ChoiceFilter(choices=SessionStatus.choices, method="filter_status")
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)
    hostUid = django_filters.UUIDFilter(field_name="host__uid", label="Host's uid")
    serverUid = django_filters.UUIDFilter(field_name="server_uid", label="Server's uid")
    user = django_filters.UUIDFilter(method="filter_user", label="A member's uid")
    type = django_filters.CharFilter(field_name="type")
    highlight = StrictBooleanFilter(field_name="highlight", label="true or false")
    workspaceId = django_filters.CharFilter(field_name="workspace_id", label="Workspace ID")
    search = django_filters.CharFilter(method="filter_search", label="Part of the session's name")

    class Meta:
        model = GameSession
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet[GameSession], name: str, value: str) -> QuerySet[GameSession]:
        due = GameSession.objects.due_q()
        if value == SessionStatus.CLOSED:
            return queryset.filter(Q(status=SessionStatus.CLOSED) | due)
        return queryset.filter(Q(status=value) & ~due)

    def filter_user(self, queryset: QuerySet[GameSession], name: str, value: uuid.UUID) -> QuerySet[GameSession]:
        return queryset.filter(Exists(Membership.objects.filter(session=OuterRef("pk"), player__uid=value)))

    def filter_search(self, queryset: QuerySet[GameSession], name: str, value: str) -> QuerySet[GameSession]:
        return queryset.filter(Q(name__icontains=value))


def select(
    queryset: QuerySet[GameSession], params: Mapping[str, str], *, actor: Actor, now: datetime | None = None
) -> QuerySet[GameSession]:
    """`queryset` narrowed by every list filter in `params`: the fixed ones of
    GameSessionFilterSet and the search parameters (search.apply_filters), AND-ed; other names
    are ignored. A bad value is a 400, as on GET /sessions. The one entry point for code that
    takes the list's filters as a mapping (quick join's `filters`)."""
    fixed = {name: value for name, value in params.items() if name in GameSessionFilterSet.base_filters}
    if fixed:
        filterset = GameSessionFilterSet(data=fixed, queryset=queryset)
        if not filterset.is_valid():
            error = translate_validation(filterset.errors)  # DRF's ValidationError, as the filter backend raises
            assert isinstance(error, Exception)
            raise error
        queryset = filterset.qs
    return search.apply_filters(queryset, params, actor=actor, now=now)


class IdFilter(django_filters.NumberFilter):
    """A row id in the query string: a whole number (NumberFilter alone takes decimals)."""

    # The stubs want NumberFilter's DecimalField; django-filter takes any form field class.
    field_class = forms.IntegerField  # type: ignore[assignment]


class SongFilterSet(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Part of the title or of the artist")

    class Meta:
        model = Song
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet[Song], name: str, value: str) -> QuerySet[Song]:
        return queryset.filter(Q(title__icontains=value) | Q(artist__icontains=value))


class ChartFilterSet(django_filters.FilterSet):
    song = IdFilter(field_name="song_id", label="The song's id", min_value=1, max_value=2**63 - 1)
    difficulty = django_filters.CharFilter(field_name="difficulty", lookup_expr="iexact", label="Difficulty (any case)")

    class Meta:
        model = Chart
        fields: list[str] = []


# JSON member -> ORM field for `sort`.
SORTABLE = {
    "uid": "uid",
    "dateCreated": "date_created",
    "dateModified": "date_modified",
    "version": "version",
    "status": "status_now",
    "visibility": "visibility",
    "numTeams": "num_teams",
    "teamSize": "team_size",
    "type": "type",
    "name": "name",
    "highlight": "highlight",
    "workspaceId": "workspace_id",
    "closesAt": "closes_at",
}
# Sortable members computed as of now (no column): freePlaces, no capacity after every number.
COMPUTED_SORTS = {"freePlaces": search.FREE_PLACES_SORT}
DEFAULT_ORDER = ["-date_created"]


def _sort_error(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_sort", errors=[field_error("sort", message, "invalid_sort")])


def parse_sort(raw: str | None) -> list[str]:
    """`sort={"dateCreated":"DESC","uid":"ASC"}` -> ORM ordering, always ending in uid ASC
    so that pages never overlap."""
    if raw is None or raw == "":
        order = list(DEFAULT_ORDER)
    else:
        try:
            spec = json.loads(raw)
        except (ValueError, RecursionError):  # `[` repeated 1,200 times overflows json's stack
            raise _sort_error('sort must be a JSON object such as {"dateCreated":"DESC"}.') from None
        if not isinstance(spec, dict) or not spec:
            raise _sort_error('sort must be a non-empty JSON object such as {"dateCreated":"DESC"}.')
        order = []
        for member, direction in spec.items():
            if member not in SORTABLE and member not in COMPUTED_SORTS and not member.startswith(search.DATA_PREFIX):
                sortable = ", ".join([*SORTABLE, *COMPUTED_SORTS, search.DATA_PLACEHOLDER])
                raise _sort_error(f"Cannot sort by {member!r}; sortable: {sortable}.")
            if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
                raise _sort_error(f"The direction of {member!r} must be ASC or DESC.")
            sign = "-" if direction.upper() == "DESC" else ""
            if member.startswith(search.DATA_PREFIX):
                key = member[len(search.DATA_PREFIX) :]
                if not search.KEY.fullmatch(key):
                    raise _sort_error(f"Cannot sort by {member!r}: a data key is 1 to 64 letters, digits, _ or -.")
                # Grouped by the value's type (always in one order), then by the value.
                rank, number, text = search.data_sort_names(key)
                order += [rank, sign + number, sign + text]
            else:
                order.append(sign + (SORTABLE.get(member) or COMPUTED_SORTS[member]))
    if "uid" not in order and "-uid" not in order:
        order.append("uid")
    return order
