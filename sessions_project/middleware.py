"""Middleware of the API's edge: bounds on what a request may make the server read, and the
headers every API response carries."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from sessions_project.errors import problem_response

API_PREFIX = "/api/"


def body_too_large(limit: int) -> HttpResponse:
    return problem_response(413, "body_too_large", f"The request body may be at most {limit} bytes.", maxBytes=limit)


class RequestBodyLimitMiddleware:
    """413 body_too_large for an API request body above REQUEST_BODY_MAX_BYTES, decided before
    anything buffers it: by Content-Length when the client sends one, else (a chunked body)
    by reading at most the limit plus one byte. Admin forms keep Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PREFIX):
            refused = self.check(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def check(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.REQUEST_BODY_MAX_BYTES
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                declared = int(length)
            except ValueError:
                return None  # Django reads a malformed Content-Length as no body
            return body_too_large(limit) if declared > limit else None
        if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        stream = request.META.get("wsgi.input")
        if stream is None:
            return None
        body = stream.read(limit + 1)
        if len(body) > limit:
            return body_too_large(limit)
        # Hand the body on as if it had come with a Content-Length (Django reads none without).
        request._stream = io.BytesIO(body)
        request.META["CONTENT_LENGTH"] = str(len(body))
        return None


class ApiResponseHeadersMiddleware:
    """Under /api/: `Cache-Control: private, no-cache` unless the view chose otherwise (answers
    depend on the caller's token: no shared cache may keep them, and a client revalidates with
    its ETag before reusing one, which 304 keeps cheap), and `X-Content-Type-Options: nosniff`
    (JSON is never to be sniffed into HTML)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path_info.startswith(API_PREFIX):
            if not response.has_header("Cache-Control"):
                response["Cache-Control"] = "private, no-cache"
            response.setdefault("X-Content-Type-Options", "nosniff")
        return response
