"""The baseline server: the project's settings (same database, connections, apps and models)
with no middleware and the bench's bare views as its only routes."""

from sessions_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
MIDDLEWARE: list[str] = []
