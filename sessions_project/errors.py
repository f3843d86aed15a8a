"""One error format for the whole API: RFC 9457 problem details with a stable `code`.

Domain code raises `DomainError` subclasses (usable from views, admin and commands alike);
the exception handler below turns them, DRF's exceptions and Django's into one body:

    {"type": "...", "title": "...", "status": 409, "detail": "...", "code": "session_full",
     "errors": [{"field": "limit", "code": "max_value", "message": "..."}], "requestId": "..."}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from sessions_project.logs import REQUEST_ID

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://sessions.example/problems/"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class DomainError(Exception):
    """A refusal from domain code: HTTP status, stable code, message and optional extras."""

    status_code = 400
    code = "invalid"
    default_detail = "The request is invalid."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"
    default_detail = "The request is invalid."


class Forbidden(DomainError):
    status_code = 403
    code = "permission_denied"
    default_detail = "You may not do this."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"
    default_detail = "If-Match does not match the current ETag."


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class TooManyRequests(DomainError):
    status_code = 429
    code = "throttled"
    default_detail = "Too many attempts; try again later."


# Field error codes that also name the whole problem: a client branches on `code` alone.
PROMOTED_FIELD_CODES = ("invalid_text", "too_deep", "data_too_large")


def field_error(field: str, message: str, code: str = "invalid") -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


# Members of the problem body itself. A domain error's extra of the same name (services pass
# the session's `status` on a 409) must not overwrite them: it is sent as `sessionStatus`.
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "requestId"})


def problem(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    for key, value in extra.items():
        body[f"session{key.capitalize()}" if key in PROBLEM_MEMBERS else key] = value
    # The request's id (X-Request-ID), so that a client reporting an error names its log lines.
    request_id = REQUEST_ID.get()
    if request_id is not None:
        body["requestId"] = request_id
    return body


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dicts/lists as a flat list of {field, code, message}."""
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            errors.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                errors.extend(_flatten(value, f"{prefix}[{index}]"))
            else:
                errors.extend(_flatten(value, prefix))
    else:
        code = getattr(detail, "code", None) or "invalid"
        errors.append({"field": prefix, "code": str(code), "message": str(detail)})
    return errors


def _response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=body["status"], headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error of the API leaves through here."""
    if isinstance(exc, DomainError):
        extra = dict(exc.extra)
        if exc.errors is not None:
            extra["errors"] = exc.errors
        return _response(problem(exc.status_code, exc.code, exc.detail, **extra), exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.exception("database unavailable")
        return _response(
            problem(503, "database_unavailable", "The database is unavailable; retry shortly."),
            {"Retry-After": "5"},
        )
    elif isinstance(exc, IntegrityError):
        # A constraint the checks before it could not see: a concurrent write of the same row
        # (two registrations of one username), or a token whose player was deleted since.
        logger.warning("integrity error: %s", exc)
        return _response(
            problem(409, "integrity_conflict", "The request conflicts with data written meanwhile; read and retry.")
        )
    elif isinstance(exc, DatabaseError):
        logger.exception("database error")
        return _response(problem(500, "server_error", "An unexpected error occurred."))

    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handling (JSON, see server_error below) takes over

    headers: dict[str, str] = {}
    # Only some exceptions carry these (NotAuthenticated and kin, Throttled).
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))
    request = context.get("request")
    status_code: int
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        status_code = status.HTTP_401_UNAUTHORIZED
        if request is not None:
            authenticator = request._authenticator or (request.authenticators or [None])[0]
            if authenticator is not None:
                headers.setdefault("WWW-Authenticate", authenticator.authenticate_header(request))
    else:
        status_code = exc.status_code

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        summary = errors[0]["message"] if len(errors) == 1 else "The request has invalid fields."
        if errors and errors[0]["field"]:
            summary = f"{errors[0]['field']}: {errors[0]['message']}" if len(errors) == 1 else summary
        codes = {error["code"] for error in errors}
        code = next((promoted for promoted in PROMOTED_FIELD_CODES if promoted in codes), "invalid")
        return _response(problem(status_code, code, summary, errors=errors), headers)

    detail: object = exc.detail
    code = "error"
    if isinstance(detail, dict):
        # simplejwt's errors: {"detail": ..., "code": ..., "messages": [...]}
        code = str(detail.get("code") or getattr(detail.get("detail"), "code", None) or "error")
        detail = detail.get("detail", "")
    elif hasattr(detail, "code"):
        code = str(detail.code)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and code == "error":
        code = "not_authenticated"
    return _response(problem(status_code, code, str(detail)), headers)


def problem_response(status_code: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    """A problem outside DRF (middleware, Django's handlers): the same body and content type."""
    return JsonResponse(
        problem(status_code, code, detail, **extra), status=status_code, content_type=PROBLEM_CONTENT_TYPE
    )


# csrf_exempt: without it a POST, PUT, PATCH or DELETE to an unknown path gets Django's HTML
# "CSRF verification failed" page before this view runs (no API route uses cookies).
@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/, whatever the method: the JSON 404, never Django's HTML page."""
    return problem_response(404, "not_found", f"No such API route: {request.path}")


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler500: JSON under /api/ (a 500 is a bug, but still not a traceback page)."""
    if request.path.startswith("/api/"):
        return problem_response(500, "server_error", "An unexpected error occurred.")
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)
