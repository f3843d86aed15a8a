from django.apps import AppConfig


class PlayersAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "players_app"
    verbose_name = "Players"
