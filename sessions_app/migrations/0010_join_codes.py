"""Join codes: every session gets a `join_code`, unique among live sessions, and wrong codes
are recorded per player for their throttle.

Existing sessions get their codes here (backfill): the column is added with one code for all
of them, each row is then given a code of its own (unique among all rows, which is more than
the constraint asks), and only then is the partial unique constraint created."""

import secrets

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import sessions_app.codes

BATCH = 2000


def backfill(apps, schema_editor):
    GameSession = apps.get_model("sessions_app", "GameSession")
    alphabet, length = sessions_app.codes.JOIN_CODE_ALPHABET, sessions_app.codes.JOIN_CODE_LENGTH
    used: set[str] = set()
    last = 0
    while True:
        rows = list(GameSession.objects.filter(pk__gt=last).order_by("pk").only("pk")[:BATCH])
        if not rows:
            return
        for row in rows:
            code = "".join(secrets.choice(alphabet) for _ in range(length))
            while code in used:
                code = "".join(secrets.choice(alphabet) for _ in range(length))
            used.add(code)
            row.join_code = code
        GameSession.objects.bulk_update(rows, ["join_code"])
        last = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0009_event_commit_order"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="gamesession",
            name="join_code",
            field=models.CharField(default=sessions_app.codes.new_join_code, editable=False, max_length=6),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="gamesession",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["open", "in_progress", "closing"])),
                fields=("join_code",),
                name="session_join_code_live",
            ),
        ),
        migrations.CreateModel(
            name="JoinCodeFailure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "player",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["player", "at"], name="join_code_failure_player_at")],
            },
        ),
    ]
