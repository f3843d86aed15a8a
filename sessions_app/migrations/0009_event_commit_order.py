"""Session event ids in commit order on PostgreSQL.

Two transactions could otherwise draw ids 10 and 11 and commit 11 first: a reader walking the
log by id (a player's feed with `?after=`, a live stream resuming, a webhook worker) that saw
11 would never see 10. A statement-level trigger takes one transaction-level advisory lock
before any INSERT into the log draws its ids; the lock is held until the commit, so the next
writer draws its ids only after the previous one is visible (or rolled back). It costs no
round trip (the trigger runs inside the INSERT). SQLite lets one transaction write at a time,
which orders them already, so nothing is installed there.
"""

from django.db import migrations

# "SessEvnt" as a 64-bit integer: the one advisory lock key of the event log's writers.
LOCK_KEY = 0x5365737345766E74

CREATE = f"""
CREATE FUNCTION sessions_app_event_commit_order() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_app_event_commit_order
    BEFORE INSERT ON sessions_app_sessionevent
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_app_event_commit_order();
"""

DROP = """
DROP TRIGGER IF EXISTS sessions_app_event_commit_order ON sessions_app_sessionevent;
DROP FUNCTION IF EXISTS sessions_app_event_commit_order();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0008_session_events")]

    operations = [migrations.RunPython(forwards, backwards)]
