"""Each session row carries its reservations ({"uid", "expiresAt"} per reservation row), so its
free places are read from the row (sessions_app/places.py); filled here from the rows."""

from django.db import migrations, models


def fill(apps, schema_editor):
    from sessions_project.times import iso

    Reservation = apps.get_model("sessions_app", "Reservation")
    GameSession = apps.get_model("sessions_app", "GameSession")
    held = {}
    for session_id, player_uid, expires_at in (
        Reservation.objects.order_by("date_created", "id").values_list("session_id", "player__uid", "expires_at")
    ):
        held.setdefault(session_id, []).append({"uid": str(player_uid), "expiresAt": iso(expires_at)})
    for session_id, doc in held.items():
        GameSession.objects.filter(pk=session_id).update(reservations_doc=doc)


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0011_webhooks"),
    ]

    operations = [
        migrations.AddField(
            model_name="gamesession",
            name="reservations_doc",
            field=models.JSONField(default=list, editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
