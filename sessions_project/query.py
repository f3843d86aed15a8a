"""Declared query parameters: a view refuses any query parameter it does not take.

A typo must never widen what a route does (`DELETE /sessions?statuss=open` would otherwise
delete everything), so every API view declares, per action (viewsets) or per method (plain
views), the names it accepts; anything else is a 400 `unknown_parameter`. The same hook refuses
query strings and the join-password header that hold text the database cannot store. Both
run after authentication and permissions (401 and 403 come first) and before the view's work.
tests/test_query_parameters.py checks that these sets are exactly what the OpenAPI schema says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rest_framework.request import Request

from sessions_project.errors import InvalidInput, field_error
from sessions_project.text import check_query_string, invalid_text, is_bad_text, printable

NO_PARAMETERS: frozenset[str] = frozenset()
# Headers whose text reaches the services (and so must be text they can handle).
CHECKED_HEADERS = ("X-Session-Password",)


def unknown_parameter(name: str, accepted: frozenset[str]) -> InvalidInput:
    shown = printable(name)
    takes = f"; this route takes: {', '.join(sorted(accepted))}" if accepted else "; this route takes none"
    message = f"Unknown query parameter {shown!r}{takes}."
    return InvalidInput(message, code="unknown_parameter", errors=[field_error(shown, message, "unknown_parameter")])


if TYPE_CHECKING:
    from rest_framework.views import APIView as _ViewBase
else:
    _ViewBase = object


class DeclaredQueryParametersMixin(_ViewBase):
    """For every API view: `query_parameters` maps an action (viewsets) or a lowercase HTTP
    method (plain views) to the query parameter names it takes; unlisted ones take none."""

    query_parameters: Mapping[str, frozenset[str]] = {}

    @classmethod
    def accepted_query_parameters(cls, action: str) -> frozenset[str]:
        return cls.query_parameters.get(action, NO_PARAMETERS)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = (request.method or "").lower()  # always set on a request being dispatched
        if method == "options":
            return  # not an operation of the API (CORS preflights are answered before views)
        if method not in self.http_method_names or not hasattr(self, method):
            return  # the 405 the dispatch gives next says more than a parameter would
        check_query_string(request.META.get("QUERY_STRING", ""))
        params = request.query_params
        if params:
            action = getattr(self, "action", None) or ("get" if method == "head" else method)
            accepted = self.accepted_query_parameters(action)
            for name in params:
                if name not in accepted:
                    raise unknown_parameter(name, accepted)
        for header in CHECKED_HEADERS:
            value = request.headers.get(header)
            if value is not None and is_bad_text(value):
                raise invalid_text(header)
