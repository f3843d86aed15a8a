"""PostgreSQL: a GIN index (jsonb_path_ops) on the session's `data`, which answers the list's
`data.<key>=v` and `in(...)` filters (containment, `data @> '{"key": v}'`; sessions_app/search.py).
SQLite has no such index: its searches read the rows (JSON1 functions), more slowly. Built
concurrently, outside a transaction, so a deploy does not lock the table while it builds."""

from django.db import migrations

NAME = "session_data_path"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON sessions_app_gamesession USING gin (data jsonb_path_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("sessions_app", "0012_session_reservations_doc"),
    ]

    operations = [migrations.RunPython(create, drop)]
