from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SessionsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sessions_app"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from sessions_project.db import use_c_timestamp_loader

        connection_created.connect(use_c_timestamp_loader, dispatch_uid="use_c_timestamp_loader")
