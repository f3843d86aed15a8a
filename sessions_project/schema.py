"""OpenAPI pieces every app shares: the problem-details error body and its responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request

from sessions_project.errors import PROBLEM_CONTENT_TYPE

# A row id in a path: parse_id takes 1 to 18 ASCII digits (0 is no row: 404).
PATH_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}

ERROR_DESCRIPTIONS = {
    400: "Malformed or invalid input (`errors` lists each field), or an unknown query parameter.",
    401: "No credentials, or bad or expired credentials.",
    403: "Authenticated but not allowed.",
    404: "Does not exist, or the caller may not see it.",
    409: "Conflicts with the current state (stale version, full, not joinable, invalid transition).",
    412: "If-Match did not match the current ETag.",
    413: "The request body is larger than REQUEST_BODY_MAX_BYTES (`body_too_large`).",
    429: "Throttled; see Retry-After.",
    503: "The database is unavailable; see Retry-After.",
}


class FieldErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(help_text="The member at fault (dotted path), empty for the whole body.")
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details, the body of every error response."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable, machine-readable: branch on this, never on text.")
    # DRF's metaclass takes declared fields off the class, so this field (named for the JSON
    # member) does not hide Serializer.errors; the stubs cannot know that.
    errors = FieldErrorSerializer(many=True, required=False)  # type: ignore[assignment]
    version = serializers.IntegerField(required=False, help_text="On version_conflict: the current version.")
    sessionStatus = serializers.CharField(
        required=False, help_text="On not_joinable, session_closed, invalid_transition: the session's status."
    )
    requestId = serializers.CharField(
        required=False, help_text="The request's id, as in the X-Request-ID response header and the server's logs."
    )


def error_responses(*codes: int, authenticated: bool = True) -> dict[tuple[int, str], OpenApiResponse]:
    """`responses=` entries for the given error status codes, as application/problem+json.
    401 and 503 are always added (401 not for routes that need no authentication)."""
    wanted = sorted({503, *codes} | ({401} if authenticated else set()))
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(response=ProblemSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in wanted
    }


ERRORS_401 = error_responses()

# What the machinery around every view answers, by status: a route's own codes come on top.
COMMON_CODES = {
    400: ("invalid", "parse_error", "not_an_object", "invalid_text", "too_deep", "unknown_parameter"),
    401: ("not_authenticated", "token_not_valid"),
    413: ("body_too_large",),
    503: ("database_unavailable",),
}


def coded_error_responses(
    codes: dict[int, tuple[str, ...]], *, body: bool = True
) -> dict[tuple[int, str], OpenApiResponse]:
    """error_responses for the statuses in `codes`, each description ending with every `code`
    the route can answer with that status: the route's own, and what every route answers
    (COMMON_CODES; the body's only where the route takes one)."""
    statuses = {*codes, 413} if body else set(codes)
    responses = {}
    for status, content_type in error_responses(*statuses):
        common = COMMON_CODES.get(status, ())
        if status == 400 and not body:
            common = ("invalid_text", "unknown_parameter")
        every = (*codes.get(status, ()), *(code for code in common if code not in codes.get(status, ())))
        listed = ", ".join(f"`{code}`" for code in every)
        responses[(status, content_type)] = OpenApiResponse(
            response=ProblemSerializer, description=f"{ERROR_DESCRIPTIONS[status]} Codes: {listed}."
        )
    return responses


# Query parameters that refuse an empty value: every other optional query parameter treats
# `?name=` as if it were absent (django-filter and the paging do), which the schema says with
# `allowEmptyValue`.
EMPTY_VALUE_REFUSED = frozenset({"closeAfter"})
# Operations throttled per client before the view runs (failed logins, registrations).
THROTTLED_OPERATIONS = frozenset({"auth_token", "players_register"})


def _problem_response(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def document_cross_cutting_answers(
    result: dict[str, Any], generator: SchemaGenerator, request: Request | None, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: what the server answers on every route whatever
    the view declares, so that the schema lists exactly what a client can get.

    - 400 everywhere: the query string is checked before any view (unknown parameters,
      text that is not valid Unicode);
    - 413 where a body is taken: the body limit refuses it before it is parsed;
    - 429 on the operations throttled per client;
    - `allowEmptyValue` on the query parameters that read `?name=` as absent."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            codes = {"400"}
            if "requestBody" in operation:
                codes.add("413")
            if operation.get("operationId") in THROTTLED_OPERATIONS:
                codes.add("429")
            for code in sorted(codes - set(responses)):
                responses[code] = _problem_response(int(code))
            operation["responses"] = dict(sorted(responses.items()))
            for parameter in operation.get("parameters", []):
                if (
                    parameter.get("in") == "query"
                    and not parameter.get("required")
                    and parameter["name"] not in EMPTY_VALUE_REFUSED
                ):
                    parameter["allowEmptyValue"] = True
    return result
