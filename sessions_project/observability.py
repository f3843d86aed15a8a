"""The request's own observability, in one middleware at the top of the stack: its request
id, its Prometheus counts and latency, and its one log line.

Cheap on purpose (it runs on every request; README "Operating it" has the measured cost):
no query, no body parsed but an error's (for its problem `code`), the player read only if
authentication already loaded it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject, empty

from sessions_project.errors import PROBLEM_CONTENT_TYPE
from sessions_project.logs import REQUEST_ID, get_logger, request_id_from
from sessions_project.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

# Anything else counts as "other": a client cannot grow the series with invented methods.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request, by name (`session-join`, `admin:index`) or,
    unnamed, by its view's dotted path: never the raw path, whose values are unbounded."""
    match = request.resolver_match
    if match is None:
        return UNMATCHED_ROUTE
    return match.view_name or match.route or UNMATCHED_ROUTE


def player_uid_of(request: HttpRequest) -> str | None:
    """The authenticated player's uid if something already loaded it (DRF's authentication,
    or admin's session): a lazy user left unread stays unread (it would cost queries)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped
        if user is empty:
            return None
    uid = getattr(user, "uid", None)
    return str(uid) if uid is not None and getattr(user, "is_authenticated", False) else None


def problem_code_of(response: HttpResponseBase) -> str | None:
    """An error response's problem `code`: from DRF's data, else from the body of a problem
    document built outside DRF (middleware, 404 under /api/, 500)."""
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        code = data.get("code")
        return str(code) if code is not None else None
    if response.get("Content-Type") == PROBLEM_CONTENT_TYPE and not response.streaming:
        try:
            body = orjson.loads(response.content)  # type: ignore[attr-defined]
        except orjson.JSONDecodeError:
            return None
        return str(body.get("code")) if isinstance(body, dict) and body.get("code") is not None else None
    return None


def forget_request_id(**kwargs: Any) -> None:
    """request_finished receiver: what the process logs between requests names none."""
    REQUEST_ID.set(None)


request_finished.connect(forget_request_id, dispatch_uid="forget_request_id")


class RequestObservabilityMiddleware:
    """Sets the request id (X-Request-ID when sane, else a new one) for everything the request
    logs and answers, echoes it in the response's X-Request-ID, counts the request in
    `http_requests_total` and `http_request_duration_seconds`, and logs one line: method,
    route, path, status, duration, player uid, problem code."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.logger = get_logger("sessions.request")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        # Unset when the response is closed (`forget_request_id`), not here: Django logs a 5xx
        # (django.request, with its traceback) after the middleware has returned.
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        self.observe(request, response, duration)
        return response

    def observe(self, request: HttpRequest, response: HttpResponseBase, duration: float) -> None:
        method = request.method if request.method in KNOWN_METHODS else "other"
        route = route_of(request)
        status = response.status_code
        status_label = str(status)
        HTTP_REQUESTS.labels(method, route, status_label).inc()
        HTTP_REQUEST_DURATION.labels(method, route, status_label).observe(duration)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": request.path,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "player": player_uid_of(request),
        }
        if status >= 400:
            fields["code"] = problem_code_of(response)
        if status >= 500:
            self.logger.error("request", **fields)
        elif status >= 400:
            self.logger.warning("request", **fields)
        else:
            self.logger.info("request", **fields)
