"""The table of the database cache (throttle counters), so that `migrate` alone prepares a
fresh database. Nothing to do when the cache is elsewhere (Redis)."""

from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models


def create_cache_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    for cache in settings.CACHES.values():
        if cache["BACKEND"] != "django.core.cache.backends.db.DatabaseCache" or cache["LOCATION"] in existing:
            continue
        # The columns `manage.py createcachetable` makes, through this migration's own editor
        # (a second schema editor cannot open inside it on SQLite).
        meta = type("Meta", (), {"apps": Apps(), "app_label": "players_app", "db_table": cache["LOCATION"]})
        table = type(
            "CacheEntry",
            (models.Model,),
            {
                "__module__": __name__,
                "Meta": meta,
                "cache_key": models.CharField(max_length=255, primary_key=True),
                "value": models.TextField(),
                "expires": models.DateTimeField(db_index=True),
            },
        )
        schema_editor.create_model(table)
        existing.add(cache["LOCATION"])


class Migration(migrations.Migration):
    dependencies = [("players_app", "0001_initial")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
