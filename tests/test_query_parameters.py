"""Every API route takes exactly the query parameters its OpenAPI operation documents; any other
is a 400 `unknown_parameter` naming it, so a typo never widens what a route reads or deletes."""

from __future__ import annotations

import re

import pytest
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

from sessions_app.models import GameSession
from sessions_project.query import DeclaredQueryParametersMixin

from .factories import PlayerFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head")


def operations() -> list[tuple[str, str, dict]]:
    """(concrete path, method, operation) for every operation of the generated schema, its
    path parameters filled with "1" (a str and an int converter both take it)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                found.append((re.sub(r"\{[^}]+\}", "1", path), method, operation))
    assert len(found) > 30
    return found


def accepted_by_server(path: str, method: str) -> frozenset[str]:
    callback = resolve(path).func
    view_class = callback.cls
    assert issubclass(view_class, DeclaredQueryParametersMixin), f"{view_class.__name__} declares no parameters"
    actions = getattr(callback, "actions", None)
    return view_class.accepted_query_parameters(actions[method] if actions else method)


def test_each_route_accepts_exactly_the_query_parameters_its_schema_documents():
    mismatches = []
    for path, method, operation in operations():
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        accepted = accepted_by_server(path, method)
        if accepted != documented:
            mismatches.append((method.upper(), path, sorted(accepted ^ documented)))

    assert mismatches == []


def test_every_route_refuses_an_unknown_query_parameter_by_name(api):
    superuser = PlayerFactory(username="root", is_superuser=True)
    api.as_(superuser)
    answered = {}
    for path, method, _ in operations():
        response = api.generic(method.upper(), f"{path}?bogus=1")
        body = response.json()
        answered[f"{method.upper()} {path}"] = (response.status_code, body.get("code"), body["errors"][0]["field"])

    assert set(answered.values()) == {(400, "unknown_parameter", "bogus")}


def test_a_typo_in_a_truncate_filter_deletes_nothing(api, truncator, make_session, host):
    make_session(host)
    make_session(host, status="in_progress")

    body = assert_problem(api.as_(truncator).delete("/api/v1/sessions?statuss=open"), 400, "unknown_parameter")

    assert body["errors"][0]["field"] == "statuss"
    assert "statuss" in body["detail"]
    assert GameSession.objects.count() == 2


def test_a_typo_in_a_list_filter_is_refused_not_ignored(api, host, make_session):
    make_session(host)

    body = assert_problem(api.as_(host).get("/api/v1/sessions?statuss=open"), 400, "unknown_parameter")

    assert body["errors"] == [{"field": "statuss", "code": "unknown_parameter", "message": body["detail"]}]


def test_documented_parameters_are_still_taken(api, host, make_session):
    make_session(host)

    listed = api.as_(host).get("/api/v1/sessions?status=open&limit=5&skip=0&sort=%7B%22uid%22%3A%22ASC%22%7D")
    counted = api.get("/api/v1/sessions/count?status=open")
    invites = api.get("/api/v1/players/me/invites?state=pending&limit=1")

    assert (listed.status_code, counted.status_code, invites.status_code) == (200, 200, 200)
    assert counted.json() == {"count": 1}


def test_authentication_is_checked_before_query_parameters(api):
    assert_problem(api.get("/api/v1/sessions?bogus=1"), 401)


def test_permission_is_checked_before_query_parameters(api, host, make_session):
    make_session(host)

    assert_problem(api.as_(host).delete("/api/v1/sessions?bogus=1"), 403)
    assert GameSession.objects.count() == 1


def test_a_parameter_of_another_action_is_unknown_here(api, host, session):
    # closeAfter belongs to DELETE /sessions/{uid}; limit to the list.
    assert_problem(api.as_(host).get(f"/api/v1/sessions/{session.uid}?closeAfter=0"), 400, "unknown_parameter")
    assert_problem(api.get("/api/v1/sessions/count?limit=5"), 400, "unknown_parameter")


@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/v1/sessions/count", "/api/v1/players/me"])
def test_a_method_the_route_does_not_have_is_405_even_with_an_unknown_parameter(api, path):
    player = PlayerFactory()

    response = api.as_(player).generic("TRACE", f"{path}?bogus=1")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
