"""Reads compiled once and run many times (`PreparedRows`, `PreparedInstances` for model
instances), and the hot writes built once (`update_fields`, `insert_rows`, `statement`: see
the section on writes below).

Building a `values()` query of a session's 26 document columns and compiling it to SQL cost
more than running it (a profile of GET /sessions/{uid}: a third of the request in the ORM's
query building and compiler, against a fifth in the database round trip). A PreparedRows
builds its queryset once per thread and database, remembers the SQL, where each parameter
sits in it and the row converters Django would apply, and afterwards only executes: the
rows are exactly what the queryset would give (same SQL, same converters), through Django's
cursor (so query logging, counting and execute wrappers see them).

JSON columns named in `raw_json` are not decoded: each value is handed on as an
orjson.Fragment of the column's text, which the API's renderer writes as it is (the same
JSON value; only the spacing inside it may differ). For the columns a response passes
through untouched, decoding and re-encoding them was the largest part of a list's work.
Those named in `raw_text` are not decoded either, but handed on as the text itself, for a
caller that looks into it before passing it through (a Fragment does not show its text).

Where the parameters sit is found by building the queryset twice, with two different
samples for every parameter: the SQL text must come out the same (a value written into the
SQL itself could not be replaced, so such a query is refused), and the positions where the
parameter lists differ are the parameters' places.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, JSONField, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError

Prepare = Callable[[Any, BaseDatabaseWrapper], Any]


def _fragment(value: Any, expression: Any, connection: Any) -> Any:
    # Both backends hand a JSON column over as its text (Django decodes it itself).
    return None if value is None else orjson.Fragment(value)


def _text(value: Any, expression: Any, connection: Any) -> Any:
    return value


@dataclass(frozen=True)
class Parameter:
    """One argument of a prepared read: how it reaches the SQL (`prepare`, as the queryset's
    own lookups prepare it) and two samples that no other parameter of the query equals."""

    prepare: Prepare
    samples: tuple[Any, Any]

    @classmethod
    def for_field(cls, field: Field[Any, Any], first: Any, second: Any) -> Parameter:
        return cls(
            lambda value, connection: field.get_db_prep_value(value, connection, prepared=False), (first, second)
        )


@dataclass
class _Compiled:
    sql: str
    params: list[Any]
    slots: list[tuple[int, int]]  # (position in params, index of the argument)
    names: list[str]
    compiler: SQLCompiler
    converters: dict[int, Any]


class PreparedRows:
    """`build(*arguments)` returns a values() queryset whose SQL takes the arguments, each
    prepared by its Parameter, only as parameters."""

    def __init__(
        self,
        build: Callable[..., QuerySet[Any, Any]],
        *parameters: Parameter,
        raw_json: frozenset[str] = frozenset(),
        raw_text: frozenset[str] = frozenset(),
    ) -> None:
        self._build = build
        self._parameters = parameters
        self._raw_json = raw_json
        self._raw_text = raw_text
        # A compiler belongs to one connection, and Django's connections to one thread.
        self._local = threading.local()

    def _compiled(self, alias: str) -> _Compiled:
        cache: dict[str, _Compiled] = self._local.__dict__.setdefault("by_alias", {})
        compiled = cache.get(alias)
        if compiled is None:
            compiled = cache[alias] = self._compile(alias)
        return compiled

    def _compile(self, alias: str) -> _Compiled:
        queryset, compiler, sql, params, slots = self._compile_sql(alias)
        query = queryset.query
        # As Django's ValuesIterable names them: values() selects in the order it was given
        # (`selected`), which puts an annotation among the columns where it was named.
        selected = getattr(query, "selected", None)
        names = list(selected) if selected else [*query.extra_select, *query.values_select, *query.annotation_select]
        columns = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
        converters = compiler.get_converters(columns)
        for position, name in enumerate(names):
            if name in self._raw_json or name in self._raw_text:
                if not isinstance(getattr(columns[position], "output_field", None), JSONField):
                    raise ValueError(f"{name} is not a JSON column")
                converters[position] = ([_fragment if name in self._raw_json else _text], columns[position])
        return _Compiled(sql, params, slots, names, compiler, converters)

    def _compile_sql(self, alias: str) -> tuple[QuerySet[Any, Any], SQLCompiler, str, list[Any], list[tuple[int, int]]]:
        """The queryset's SQL, its parameters and where the arguments go among them."""
        connection = connections[alias]
        built = []
        for which in (0, 1):
            queryset = self._build(*(p.samples[which] for p in self._parameters))
            compiler = queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            built.append((queryset, compiler, sql, list(params)))
        (queryset, compiler, sql, params), (_, _, other_sql, other_params) = built
        if sql != other_sql or len(params) != len(other_params):
            raise ValueError(f"the prepared query writes an argument into its SQL text: {sql}")
        first = [p.prepare(p.samples[0], connection) for p in self._parameters]
        slots = []
        for position, (a, b) in enumerate(zip(params, other_params, strict=True)):
            if a != b:
                matches = [index for index, value in enumerate(first) if value == a]
                if len(matches) != 1:
                    raise ValueError(f"parameter {position} of the prepared query is no single argument: {sql}")
                slots.append((position, matches[0]))
        return queryset, compiler, sql, params, slots

    def _fetch(self, compiled: _Compiled, arguments: tuple[Any, ...], using: str) -> list[Any]:
        """The rows, converted as Django would convert them."""
        connection = connections[using]
        params = list(compiled.params)
        if compiled.slots:
            prepared = [p.prepare(value, connection) for p, value in zip(self._parameters, arguments, strict=True)]
            for position, index in compiled.slots:
                params[position] = prepared[index]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched: list[Any] = cursor.fetchall()
        if not compiled.converters:
            return fetched
        return list(compiled.compiler.apply_converters(fetched, compiled.converters))

    def rows(self, *arguments: Any, using: str = "default") -> list[dict[str, Any]]:
        compiled = self._compiled(using)
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in self._fetch(compiled, arguments, using)]

    def first(self, *arguments: Any, using: str = "default") -> dict[str, Any] | None:
        rows = self.rows(*arguments, using=using)
        return rows[0] if rows else None


@dataclass
class _CompiledInstances:
    compiled: _Compiled
    model: type[Model]
    start: int  # the model's first column in a row
    attnames: list[str]  # the model's columns, in the order they are selected
    annotations: list[tuple[str, int]]  # (attribute, position in the row)
    for_update: bool  # a select_for_update(): only inside a transaction


M = TypeVar("M", bound=Model)


class PreparedInstances(PreparedRows, Generic[M]):
    """As PreparedRows, for a queryset of model instances (no values(), no select_related):
    each row becomes the instance Django's ModelIterable would build (`Model.from_db`), with
    its annotations set as attributes. Also for a `select_for_update()` queryset: it is
    compiled on its first run, inside the caller's transaction."""

    def __init__(self, build: Callable[..., QuerySet[M, M]], *parameters: Parameter) -> None:
        super().__init__(build, *parameters)

    def _compiled_instances(self, alias: str) -> _CompiledInstances:
        cache: dict[str, _CompiledInstances] = self._local.__dict__.setdefault("instances_by_alias", {})
        found = cache.get(alias)
        if found is None:
            queryset, compiler, sql, params, slots = self._compile_sql(alias)
            klass_info = compiler.klass_info
            if klass_info is None or klass_info.get("related_klass_infos"):
                raise ValueError(f"not a plain model query: {sql}")
            fields = klass_info["select_fields"]
            start, end = fields[0], fields[-1] + 1
            columns = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
            found = cache[alias] = _CompiledInstances(
                _Compiled(sql, params, slots, [], compiler, compiler.get_converters(columns)),
                klass_info["model"],
                start,
                [selected[0].target.attname for selected in compiler.select[start:end]],
                list(compiler.annotation_col_map.items()),
                bool(queryset.query.select_for_update),
            )
        return found

    def instances(self, *arguments: Any, using: str = "default") -> list[M]:
        prepared = self._compiled_instances(using)
        if prepared.for_update and connections[using].get_autocommit():
            # As Django refuses it: outside a transaction the lock would end with the statement.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        start, end = prepared.start, prepared.start + len(prepared.attnames)
        made: list[M] = []
        for row in self._fetch(prepared.compiled, arguments, using):
            instance: M = prepared.model.from_db(  # type: ignore[assignment]  # the build's model
                using, prepared.attnames, row[start:end]
            )
            for attribute, position in prepared.annotations:
                setattr(instance, attribute, row[position])
            made.append(instance)
        return made


# --- writes ------------------------------------------------------------------------------------
# The hot writes (every join, leave and change saves its session row and inserts its events)
# spent more in building and compiling their statements than in running them. These write the
# SQL Django writes for `save(update_fields=...)` and `bulk_create`, once per table, fields,
# row count and database, and then only prepare the values (`pre_save`, `get_db_prep_save`,
# as Django does) and execute through Django's cursor. No signals are sent: none is connected
# to the models they are used for.


class _Statements(threading.local):
    def __init__(self) -> None:
        self.sql: dict[tuple[Any, ...], str] = {}


_statements = _Statements()


def statement(key: tuple[Any, ...], build: Callable[[BaseDatabaseWrapper], str], using: str = "default") -> str:
    """The SQL `build(connection)` writes, built once per key and database (per thread)."""
    found = _statements.sql.get((*key, using))
    if found is None:
        found = _statements.sql[(*key, using)] = build(connections[using])
    return found


def _column(connection: BaseDatabaseWrapper, field: Any) -> str:
    return str(connection.ops.quote_name(field.column))


def _update(instance: Model, fields: Iterable[str], connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """The UPDATE of `instance.save(update_fields=fields)` and its parameters."""
    meta = instance._meta
    # A field named by its attname (`host_id`) is the same field as by its name.
    chosen: list[Any] = sorted({meta.get_field(name) for name in fields}, key=lambda field: field.name)

    def build(connection: BaseDatabaseWrapper) -> str:
        columns = ", ".join(f"{_column(connection, field)} = %s" for field in chosen)
        table = connection.ops.quote_name(meta.db_table)
        return f"UPDATE {table} SET {columns} WHERE {_column(connection, meta.pk)} = %s"

    sql = statement(("update", meta.label, tuple(field.name for field in chosen)), build, connection.alias)
    params = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in chosen]
    params.append(instance.pk)
    return sql, params


def _insert(instances: Sequence[Model], connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """bulk_create's INSERT of new rows of one model, RETURNING their pks, and its parameters."""
    meta = instances[0]._meta
    fields: list[Any] = [field for field in meta.concrete_fields if field is not meta.auto_field]

    def build(connection: BaseDatabaseWrapper) -> str:
        row = f"({', '.join(['%s'] * len(fields))})"
        return (
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)}"
            f" ({', '.join(_column(connection, field) for field in fields)})"
            f" VALUES {', '.join([row] * len(instances))} RETURNING {_column(connection, meta.pk)}"
        )

    sql = statement(("insert", meta.label, len(instances)), build, connection.alias)
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for instance in instances for field in fields
    ]
    return sql, params


def _inserted(instances: Sequence[Model], ids: list[Any], using: str) -> None:
    for instance, pk in zip(instances, ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = using


def update_fields(instance: Model, fields: Iterable[str], using: str = "default") -> None:
    """`instance.save(update_fields=fields)`: its row's UPDATE, compiled once per field set.
    Raises DatabaseError, as save() does, when no row was updated."""
    connection = connections[using]
    sql, params = _update(instance, fields, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise DatabaseError(NOTHING_UPDATED)


NOTHING_UPDATED = "Save with update_fields did not affect any rows."


def insert_rows(instances: Sequence[Model], using: str = "default") -> None:
    """`bulk_create(instances)` of new rows of one model with an automatic primary key: one
    INSERT, compiled once per row count, whose RETURNING sets each instance's pk."""
    if not instances:
        return
    connection = connections[using]
    if not connection.features.can_return_rows_from_bulk_insert:
        type(instances[0])._default_manager.using(using).bulk_create(instances)
        return
    sql, params = _insert(instances, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _inserted(instances, [row[0] for row in cursor.fetchall()], using)


def update_and_insert(instance: Model, fields: Iterable[str], rows: Sequence[Model], using: str = "default") -> None:
    """`update_fields(instance, fields)` then `insert_rows(rows)`. On PostgreSQL one statement,
    the UPDATE in a data-modifying WITH (one round trip fewer for a write that saves its row
    and logs its events); the count of rows it updated comes back with the ids, and none
    raises DatabaseError as update_fields does (the caller's transaction then takes the
    inserted rows back with it)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not rows:
        update_fields(instance, fields, using)
        insert_rows(rows, using)
        return
    update_sql, update_params = _update(instance, fields, connection)
    insert_sql, insert_params = _insert(rows, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH updated AS ({update_sql} RETURNING 1) {insert_sql}, (SELECT count(*) FROM updated)",
            [*update_params, *insert_params],
        )
        fetched = cursor.fetchall()
    if fetched[0][1] != 1:
        raise DatabaseError(NOTHING_UPDATED)
    _inserted(rows, [row[0] for row in fetched], using)
