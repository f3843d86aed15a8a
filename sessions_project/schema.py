"""OpenAPI pieces every app shares: the problem-details error body and its responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from sessions_project.errors import PROBLEM_CONTENT_TYPE

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


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The member at fault (dotted path), empty for the whole body.")
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every error response."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable, machine-readable: branch on this, never on text.")
    errors = FieldErrorSerializer(many=True, required=False)
    version = serializers.IntegerField(required=False, help_text="On version_conflict: the current version.")
    sessionStatus = serializers.CharField(
        required=False, help_text="On not_joinable, session_closed, invalid_transition: the session's status."
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


def _problem_response(code: int) -> dict:
    content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {"content": content, "description": ERROR_DESCRIPTIONS[code]}


def document_input_errors(result, generator, request, public):
    """Postprocessing hook for the refusals every route shares, so no view repeats them: any
    operation may answer 400 (`unknown_parameter`, `invalid_text` in the query string), and one
    that takes a body may answer 413 `body_too_large` (RequestBodyLimitMiddleware)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("400", _problem_response(400))
            if "requestBody" in operation:
                responses.setdefault("413", _problem_response(413))
    return result
