"""The OpenAPI parameters of the list's search (sessions_app.search) and cursor paging."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from sessions_app import search
from sessions_project.errors import PROBLEM_CONTENT_TYPE
from sessions_project.schema import ProblemSerializer, error_responses

OPERATORS_TEXT = (
    "A bare value means eq. Operators (service-core's form): eq(v), ne(v), gt(v), gte(v), lt(v), lte(v), "
    "in(a,b,...) (at most 100), nin(a,b,...), range(lo,hi) (inclusive). A bad value is 400 invalid_filter naming "
    "the parameter."
)
_MEMBER_TEXT = {
    "numTeams": "Number of teams: a whole number, or the operator form. ",
    "teamSize": "Team size: a whole number, or the operator form. ",
    "version": "The document's version: a whole number, or the operator form. ",
    "dateCreated": "Creation time (ISO 8601; no zone: UTC), or the operator form, e.g. gte(2026-11-30T00:00:00Z). ",
    "dateModified": "Last write time (ISO 8601), or the operator form. ",
    "closesAt": "When a closing session closes (ISO 8601, or null for none), or the operator form. ",
    "freePlaces": (
        "Capacity minus members minus active reservations: a whole number, null (no capacity: unlimited, which "
        "matches every lower bound and no upper one), or the operator form, e.g. gte(2). "
    ),
}

SEARCH_PARAMETERS = [
    OpenApiParameter(
        search.DATA_PLACEHOLDER,
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        description=(
            "data.<key> (any key of 1 to 64 letters, digits, _ or -; several combine with AND): sessions whose "
            "top-level data member <key> matches. A value that reads as a JSON number, true, false or null is that "
            'literal; a quoted value ("5") is always a string; anything else is a string. Compared only with values '
            'of the same JSON type (5 never matches "5", gt(10) never matches a string, strings compare in '
            "code-point order); a session without the key matches nothing, ne and nin included. "
            + OPERATORS_TEXT
            + " Also like(text): case-insensitive contains, on strings."
        ),
    ),
    *(
        OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=text + OPERATORS_TEXT)
        for name, text in _MEMBER_TEXT.items()
    ),
    OpenApiParameter(
        "hasPassword",
        {"type": "string", "enum": ["true", "false"]},
        OpenApiParameter.QUERY,
        description="Sessions with (true) or without (false) a join password.",
    ),
    OpenApiParameter(
        "joinable",
        {"type": "string", "enum": ["true"]},
        OpenApiParameter.QUERY,
        description=(
            "true: the open sessions the caller is not in and could join now: a free place (or one reserved for it), "
            "and no password unless it holds a pending invite or a reservation there."
        ),
    ),
]

CURSOR_PARAMETER = OpenApiParameter(
    "cursor",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description=(
        'The next page: the cursor of the previous page\'s Link: <...>; rel="next" header (follow the link as it '
        "is). Opaque and signed; it continues after the last session of that page in the same sort, whatever is "
        "created or deleted meanwhile. With another sort or other filters (limit may change): 400 cursor_mismatch; "
        "altered: 400 invalid_cursor; with skip: 400 skip_with_cursor."
    ),
)

LINK_HEADER = OpenApiParameter(
    "Link",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    description=(
        '<URL>; rel="next" when the page is full (as many sessions as limit): the same request with the next '
        "page's cursor (skip dropped). A shorter page has none."
    ),
)


def search_errors(*codes: int, cursor: bool = False) -> dict[tuple[int, str], OpenApiResponse]:
    """error_responses with the 400's codes of a route that searches (and pages by cursor)."""
    answers = error_responses(400, *codes)
    listed = [
        "unknown_parameter (a parameter the route does not take)",
        "invalid_filter (a search parameter's value or data key; `errors[0].field` names it)",
        "invalid / invalid_choice (a fixed filter's value: status, visibility, hostUid, ...)",
    ]
    if cursor:
        listed += [
            "invalid_sort (sort)",
            "invalid / out_of_range (limit, skip)",
            "invalid_cursor (a cursor this server did not make, or changed)",
            "cursor_mismatch (a cursor made for another sort or other filters)",
            "skip_with_cursor (skip and cursor together)",
        ]
    answers[(400, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
        response=ProblemSerializer, description="Invalid input; `code` is one of: " + "; ".join(listed) + "."
    )
    return answers
