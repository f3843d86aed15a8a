"""limit/skip paging as the seed has it: a plain JSON array, and never a COUNT query."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_project.errors import InvalidInput, field_error

MAX_LIMIT = 1000
# The query parameters a paged list takes (views add them to their declared parameters).
PAGING_PARAMETERS = frozenset({"limit", "skip"})
DEFAULT_LIMIT = 100
_Row = TypeVar("_Row")
# What _whole_number takes, for the OpenAPI schema (at most 18 digits).
LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
SKIP_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1, "default": 0}


def _whole_number(params: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
        message = f"{name} must be a whole number."
        raise InvalidInput(message, errors=[field_error(name, message, "invalid")])
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
        message = f"{name} must be {bound}."
        raise InvalidInput(message, errors=[field_error(name, message, "out_of_range")])
    return value


def limit_skip(params: Mapping[str, str]) -> tuple[int, int]:
    """(limit, skip) from the query string: limit 1-1000 (default 100), skip 0 or more."""
    limit = _whole_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    skip = _whole_number(params, "skip", 0, 0, None)
    return limit, skip


# Keyset paging by id (event logs): `after` an id (0: from the start), `limit` as above.
AFTER_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1, "default": 0}


def after_limit(params: Mapping[str, str]) -> tuple[int, int]:
    """(after, limit) from the query string: after 0 or more (default 0), limit 1-1000 (default 100)."""
    after = _whole_number(params, "after", 0, 0, None)
    limit = _whole_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return after, limit


# From this skip on, a deferred page (see page_slice) pays for its second scan of the page's rows.
DEFERRED_FROM = 1000


def page_slice(queryset: QuerySet[Any, _Row], limit: int, skip: int, *, deferred: bool = False) -> QuerySet[Any, _Row]:
    """The queryset of one page: `limit` rows after `skip`.

    `deferred` (for a deep skip): find the page's primary keys first, in a subquery ordered,
    filtered and sliced as the queryset is, then read only those rows, in the queryset's
    order. OFFSET must step over every skipped row: done over the page's keys alone,
    PostgreSQL steps through an index that holds the order and what the filters read (an
    index-only scan) instead of fetching each skipped row from the table. Same rows, same
    order: the order must be total (the list's ends in its unique uid)."""
    if deferred and skip >= DEFERRED_FROM:
        keys = queryset.values("pk")[skip : skip + limit]
        return queryset.filter(pk__in=keys)
    return queryset[skip : skip + limit]


def page_of(queryset: QuerySet[Any, _Row] | Sequence[_Row], request: Request, *, deferred: bool = False) -> list[_Row]:
    """The rows of the page `?limit=` and `?skip=` ask for (one query for a queryset; see
    page_slice for `deferred`)."""
    limit, skip = limit_skip(request.query_params)
    if isinstance(queryset, QuerySet):
        return list(page_slice(queryset, limit, skip, deferred=deferred))
    return list(queryset[skip : skip + limit])


class LimitSkipPagination(BasePagination):
    """`page_of` for DRF, and the paging parameters for the schema. The list views call
    `page_of` themselves: GenericAPIView.paginate_queryset may answer None (no paginator)."""

    def paginate_queryset(
        self, queryset: QuerySet[Any, _Row] | Sequence[_Row], request: Request, view: APIView | None = None
    ) -> list[_Row]:
        return page_of(queryset, request)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "How many results at most (1 to 1000).",
                "schema": LIMIT_SCHEMA,
            },
            {
                "name": "skip",
                "in": "query",
                "required": False,
                "description": "How many results to skip (paging).",
                "schema": SKIP_SCHEMA,
            },
        ]
