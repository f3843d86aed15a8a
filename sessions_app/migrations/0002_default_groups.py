"""The seed's scopes as permissions, and the default groups: Players (every new player) and
Game servers (session:*). Permissions are created here rather than left to post_migrate so
that the groups can hold them straight after `migrate`."""

from django.db import migrations

SCOPES = {
    "session:*": "May do anything to any session (game servers, operators)",
    "session:read-player:any": "May read any player's sessions",
    "session:read-player:self": "May read one's own sessions",
    "customise_session": "May name, describe and highlight the sessions one hosts",
    "truncate_sessions": "May delete every session at once (DELETE /sessions)",
}
GROUPS = {
    "Players": ["session:read-player:self", "customise_session"],
    "Game servers": ["session:*"],
}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="sessions_app", model="gamesession")
    permissions = {}
    for codename, name in SCOPES.items():
        permissions[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[c] for c in codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
