from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SessionsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sessions_app"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from sessions_project.db import use_c_timestamp_loader
        from sessions_project.metrics import install_query_counter

        connection_created.connect(use_c_timestamp_loader, dispatch_uid="use_c_timestamp_loader")
        # Every connection counts its statements and errors (db_queries_total, db_query_errors_total).
        connection_created.connect(install_query_counter, dispatch_uid="install_query_counter")
