"""Reads compiled once and run many times: `PreparedRows`.

Building a `values()` query of a session's 26 document columns and compiling it to SQL cost
more than running it (a profile of GET /sessions/{uid}: a third of the request in the ORM's
query building and compiler, against a fifth in the database round trip). A PreparedRows
builds the queryset once per thread and database, with a sample value for its one
parameter, remembers the SQL, where the parameter sits in it and the row converters Django
would apply, and afterwards only executes: the rows are exactly what the queryset would
give (same SQL, same converters), through Django's cursor (so query logging, counting and
execute wrappers see them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Field, QuerySet
from django.db.models.sql.compiler import SQLCompiler


@dataclass
class _Compiled:
    sql: str
    params: list[Any]
    slot: int  # where the parameter goes in params
    names: list[str]
    compiler: SQLCompiler
    converters: dict[int, Any]


class PreparedRows:
    """`build(value)` must return a values() queryset whose SQL takes `value`, prepared by
    `field`, as exactly one parameter, and whose SQL does not otherwise depend on it."""

    def __init__(
        self, build: Callable[[Any], QuerySet[Any, dict[str, Any]]], field: Field[Any, Any], sample: Any
    ) -> None:
        self._build = build
        self._field = field
        self._sample = sample
        # A compiler belongs to one connection, and Django's connections to one thread.
        self._local = threading.local()

    def _compiled(self, alias: str) -> _Compiled:
        cache: dict[str, _Compiled] = self._local.__dict__.setdefault("by_alias", {})
        compiled = cache.get(alias)
        if compiled is None:
            compiled = cache[alias] = self._compile(alias)
        return compiled

    def _compile(self, alias: str) -> _Compiled:
        connection = connections[alias]
        queryset = self._build(self._sample)
        query = queryset.query
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        sample = self._field.get_db_prep_value(self._sample, connection, prepared=False)
        slots = [i for i, param in enumerate(params) if param == sample]
        if len(slots) != 1:
            raise ValueError(f"the prepared query takes its parameter {len(slots)} times, not once: {sql}")
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        columns = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
        return _Compiled(sql, list(params), slots[0], names, compiler, compiler.get_converters(columns))

    def rows(self, value: Any, using: str = "default") -> list[dict[str, Any]]:
        compiled = self._compiled(using)
        connection = connections[using]
        params = list(compiled.params)
        params[compiled.slot] = self._field.get_db_prep_value(value, connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        rows = compiled.compiler.apply_converters(fetched, compiled.converters) if compiled.converters else fetched
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in rows]

    def first(self, value: Any, using: str = "default") -> dict[str, Any] | None:
        rows = self.rows(value, using)
        return rows[0] if rows else None
