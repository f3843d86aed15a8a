"""Liveness and readiness for load balancers and orchestrators: `GET /healthz` (the process
answers; nothing else is touched) and `GET /readyz` (the process can serve: the database
answers, every migration is applied, Redis answers when REDIS_URL is set).

Our own rather than django-health-check: these three checks are some fifty lines, answer in
the project's JSON and error format, and need no installed app, table or template; the
library's database check writes and deletes a row of its own table on every call, and its
pages and plugins are more than a probe needs. No authentication, no throttle, and cheap
enough for a probe every second: one `SELECT 1`, one Redis PING, and the migration check
only until it has passed once (applied migrations do not come undone under a running process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from sessions_project.errors import problem_response

logger = logging.getLogger(__name__)


class NotReady(Exception):
    """A readiness check that did not pass, with what to say about it."""


def check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


_migrations_applied = False


def check_migrations() -> None:
    """No migration left to apply; once that holds it is not checked again in this process."""
    global _migrations_applied
    if _migrations_applied:
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise NotReady(f"{len(plan)} migration(s) not applied")
    _migrations_applied = True


_redis_client: Any = None


def check_redis() -> None:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    _redis_client.ping()


def readiness_checks() -> list[tuple[str, Callable[[], None]]]:
    checks: list[tuple[str, Callable[[], None]]] = [("database", check_database), ("migrations", check_migrations)]
    if settings.REDIS_URL:
        checks.append(("redis", check_redis))
    return checks


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 with every check's result, or 503 (a problem document, code
    `not_ready`) naming the first check that failed; the checks after it are `skipped`.
    What failed is logged in full, and answered only as its kind (no host names leak)."""
    results: dict[str, str] = {}
    failed: str | None = None
    for name, check in readiness_checks():
        if failed is not None:
            results[name] = "skipped"
            continue
        try:
            check()
        except NotReady as exc:
            results[name] = f"failed: {exc}"
            failed = name
        except Exception as exc:  # whatever the driver raises: the check failed, the probe answers
            logger.warning("readiness check %s failed", name, exc_info=True)
            results[name] = f"failed: {type(exc).__name__}"
            failed = name
        else:
            results[name] = "ok"
    if failed is not None:
        response = problem_response(503, "not_ready", f"Not ready: the {failed} check failed.", checks=results)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "checks": results})
