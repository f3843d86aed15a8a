"""The OpenAPI schema generates without a warning, validates, and documents every route of the
sessions resource accurately; Swagger UI loads with no internet."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Route -> methods and operationIds of tokens, registration and the sessions resource. The other
# routes are not checked here, but they must not break generation.
ROUTES = {
    "/api/v1/auth/token": {"post": "auth_token"},
    "/api/v1/auth/token/refresh": {"post": "auth_token_refresh"},
    "/api/v1/players": {"post": "players_register"},
    "/api/v1/players/me": {"get": "players_me"},
    "/api/v1/sessions": {"get": "sessions_list", "post": "sessions_create", "delete": "sessions_truncate"},
    "/api/v1/sessions/count": {"get": "sessions_count"},
    "/api/v1/sessions/{uid}": {
        "get": "sessions_retrieve",
        "put": "sessions_update",
        "patch": "sessions_partial_update",
        "delete": "sessions_destroy",
    },
    "/api/v1/sessions/{uid}/join": {"get": "sessions_join_get", "post": "sessions_join"},
    "/api/v1/sessions/{uid}/leave": {"get": "sessions_leave_get", "post": "sessions_leave"},
}
PUBLIC_OPERATIONS = {"auth_token", "auth_token_refresh", "players_register"}
SEED_MEMBERS = {
    "uid",
    "dateCreated",
    "dateModified",
    "version",
    "data",
    "hostUid",
    "invited",
    "numTeams",
    "serverUid",
    "status",
    "teams",
    "teamSize",
    "users",
    "visibility",
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        # --fail-on-warn: any warning or error of the generator fails; --validate: the result
        # is checked against the OpenAPI 3 JSON schema.
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_passes_the_openapi_spec_validator(schema):
    # Stricter than the generator's own --validate: it also resolves every path parameter.
    validate(schema)


def test_each_operation_declares_exactly_the_parameters_of_its_path(schema):
    # A client generator drops an operation whose path parameters do not match its template.
    for path, methods in schema["paths"].items():
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, op in methods.items():
            declared = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert sorted(declared) == sorted(in_template), f"{method} {path}"


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for methods in schema["paths"].values() for op in methods.values()]

    assert len(ids) == len(set(ids))


def operation(schema, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def test_every_route_and_method_is_documented_with_its_operation_id(schema):
    for path, methods in ROUTES.items():
        assert path in schema["paths"], path
        for method, operation_id in methods.items():
            assert operation(schema, path, method)["operationId"] == operation_id


def test_paths_have_no_trailing_slash(schema):
    api_paths = [p for p in schema["paths"] if p.startswith("/api/v1/")]

    assert api_paths
    assert [p for p in api_paths if p.endswith("/")] == []


def test_every_operation_documents_its_errors_as_problem_details(schema):
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            errors = {code: r for code, r in op["responses"].items() if code.startswith(("4", "5"))}
            assert errors, f"{method} {path} documents no error"
            for code, response in errors.items():
                assert list(response["content"]) == [PROBLEM], f"{method} {path} {code}"
                assert response["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/Problem"


def test_authentication_is_documented_where_it_is_required(schema):
    for path, methods in ROUTES.items():
        for method, operation_id in methods.items():
            op = operation(schema, path, method)
            if operation_id in PUBLIC_OPERATIONS:
                assert op.get("security", [{}]) in ([{}], []), operation_id
            else:
                assert {"jwtAuth": []} in op["security"], operation_id
                assert "401" in op["responses"], operation_id
    # Registration cannot answer 401: it authenticates nobody.
    assert "401" not in operation(schema, "/api/v1/players", "post")["responses"]
    scheme = schema["components"]["securitySchemes"]["jwtAuth"]
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/v1/sessions", "get", {"200", "400", "401"}),
        ("/api/v1/sessions", "post", {"201", "400", "401", "403", "409"}),
        ("/api/v1/sessions", "delete", {"200", "401", "403"}),
        ("/api/v1/sessions/count", "get", {"200", "400", "401"}),
        ("/api/v1/sessions/{uid}", "get", {"200", "304", "400", "401", "404"}),
        ("/api/v1/sessions/{uid}", "put", {"200", "400", "401", "403", "404", "409", "412"}),
        ("/api/v1/sessions/{uid}", "patch", {"200", "400", "401", "403", "404", "409", "412"}),
        ("/api/v1/sessions/{uid}", "delete", {"200", "400", "401", "403", "404"}),
        ("/api/v1/sessions/{uid}/join", "post", {"200", "400", "401", "403", "404", "409", "429"}),
        ("/api/v1/sessions/{uid}/join", "get", {"200", "400", "401", "403", "404", "409", "429"}),
        ("/api/v1/sessions/{uid}/leave", "post", {"200", "400", "401", "404", "409"}),
        ("/api/v1/auth/token", "post", {"200", "400", "401"}),
        ("/api/v1/players", "post", {"201", "400", "403"}),
    ],
)
def test_each_route_documents_the_statuses_it_answers(schema, path, method, codes):
    assert codes <= set(operation(schema, path, method)["responses"])


def test_the_session_document_has_every_seed_member_and_no_password(schema):
    session = schema["components"]["schemas"]["Session"]["properties"]

    assert SEED_MEMBERS <= set(session)
    assert "hasPassword" in session
    assert "password" not in session


def test_the_session_input_takes_a_write_only_password_and_the_seeds_members(schema):
    body = schema["components"]["schemas"]["SessionInputRequest"]["properties"]

    assert body["password"]["writeOnly"] is True
    assert {"data", "hostUid", "numTeams", "teamSize", "status", "visibility", "users", "serverUid"} <= set(body)
    assert body["numTeams"]["minimum"] == 0
    assert set(schema["components"]["schemas"]["StatusEnum"]["enum"]) == {"open", "in_progress", "closing", "closed"}


def test_the_list_is_an_array_with_its_query_parameters(schema):
    op = operation(schema, "/api/v1/sessions", "get")
    response = op["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in response:
        response = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[-1]]
    parameters = {p["name"]: p for p in op["parameters"]}

    assert response["type"] == "array"
    assert {"limit", "skip", "sort", "status", "visibility", "hostUid", "serverUid", "user"} <= set(parameters)
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["limit"]["schema"]["minimum"] == 1


def test_count_takes_the_same_filters(schema):
    parameters = {p["name"] for p in operation(schema, "/api/v1/sessions/count", "get")["parameters"]}

    assert {"status", "visibility", "hostUid", "serverUid", "user"} <= parameters


def test_truncate_documents_the_same_filters_as_count_and_no_paging(schema):
    def names(path, method):
        return {p["name"] for p in operation(schema, path, method)["parameters"]}

    truncate = names("/api/v1/sessions", "delete")

    assert truncate == names("/api/v1/sessions/count", "get")
    assert {"workspaceId", "search", "highlight", "type"} <= truncate
    assert not {"limit", "skip", "sort"} & truncate
    assert "400" in operation(schema, "/api/v1/sessions", "delete")["responses"]


def test_conditional_headers_and_the_join_password_header_are_documented(schema):
    def headers(path, method):
        return {p["name"] for p in operation(schema, path, method).get("parameters", []) if p["in"] == "header"}

    assert "If-Match" in headers("/api/v1/sessions/{uid}", "put")
    assert "If-Match" in headers("/api/v1/sessions/{uid}", "patch")
    assert "X-Session-Password" in headers("/api/v1/sessions/{uid}/join", "get")
    assert "X-Session-Password" in headers("/api/v1/sessions/{uid}/join", "post")


def test_token_responses_are_documented(schema):
    token = operation(schema, "/api/v1/auth/token", "post")["responses"]["200"]
    refresh = operation(schema, "/api/v1/auth/token/refresh", "post")["responses"]["200"]

    def properties(response):
        ref = response["content"]["application/json"]["schema"]["$ref"]
        return set(schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"])

    assert properties(token) == {"access", "refresh"}
    # Refresh tokens rotate: a refresh answers a new one.
    assert properties(refresh) == {"access", "refresh"}


def test_logout_and_the_sign_in_throttles_are_documented(schema):
    logout = operation(schema, "/api/v1/auth/logout", "post")
    body = logout["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    assert set(schema["components"]["schemas"][body]["properties"]) == {"refresh"}
    assert {"204", "400", "401"} <= set(logout["responses"])
    assert "content" not in logout["responses"]["204"]
    assert logout.get("security") in (None, [])  # needs no access token
    for path in ("/api/v1/auth/token", "/api/v1/players"):
        throttled = operation(schema, path, "post")["responses"]["429"]
        assert "application/problem+json" in throttled["content"]


def test_the_problem_schema_matches_the_bodies(schema):
    problem = schema["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert {"errors", "version"} <= set(problem["properties"])


def test_the_schema_is_served_without_authentication(api):
    response = api.get("/api/v1/schema/")

    assert response.status_code == 200
    assert b"/api/v1/sessions/{uid}/join" in response.content


def test_swagger_ui_loads_with_no_internet(api):
    response = api.get("/api/v1/docs/")
    page = response.content.decode()

    assert response.status_code == 200
    assert "text/html" in response["Content-Type"]
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page) == []
    # Every script, stylesheet and icon is one of our static files.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    # The online validator badge would call validator.swagger.io.
    assert '"validatorUrl": null' in page
    assert "/api/v1/schema/" in page


def test_path_ids_paging_and_close_after_declare_the_bounds_the_server_enforces(schema):
    def parameter(path, method, name):
        (found,) = [p for p in operation(schema, path, method)["parameters"] if p["name"] == name]
        return found["schema"]

    assert parameter("/api/v1/invites/{invite_id}/accept", "post", "invite_id") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10**18 - 1,
    }
    assert parameter("/api/v1/sessions/{uid}/teams/{index}/join", "post", "index")["minimum"] == 0
    assert parameter("/api/v1/sessions/{uid}/invites", "get", "limit")["minimum"] == 1
    assert parameter("/api/v1/players/me/invites", "get", "limit")["maximum"] == 1000
    assert parameter("/api/v1/sessions/{uid}", "delete", "closeAfter") == {
        "type": "integer",
        "minimum": 0,
        "maximum": 3600,
    }
    assert parameter("/api/v1/charts", "get", "song")["minimum"] == 1


def test_filters_document_that_an_empty_value_means_no_filter(schema):
    parameters = {p["name"]: p for p in operation(schema, "/api/v1/sessions", "get")["parameters"]}
    close_after = [p for p in operation(schema, "/api/v1/sessions/{uid}", "delete")["parameters"] if p["in"] == "query"]

    assert parameters["user"]["allowEmptyValue"] is True
    assert parameters["limit"]["allowEmptyValue"] is True
    assert "allowEmptyValue" not in close_after[0]


def test_every_operation_documents_400_and_every_body_413(schema):
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            assert "400" in op["responses"], f"{method} {path}"
            if "requestBody" in op:
                assert "413" in op["responses"], f"{method} {path}"
    assert "429" in operation(schema, "/api/v1/auth/token", "post")["responses"]
    assert "429" in operation(schema, "/api/v1/players", "post")["responses"]


def test_data_is_an_object_and_numbers_carry_their_column_bounds(schema):
    components = schema["components"]["schemas"]
    song = components["SongRequest"]["properties"]

    assert components["PatchedSessionInputRequest"]["properties"]["data"]["type"] == "object"
    assert song["bpm"]["minimum"] == 0
    assert song["bpm"]["maximum"] == 10**5
    assert song["bpm"]["exclusiveMaximum"] is True


# --- customisation, search, the import and the lifecycle routes -------------------------------


def test_the_schema_documents_customisation_highlight_search_and_the_import(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    body = components["SessionInputRequest"]["properties"]
    assert (body["name"]["minLength"], body["name"]["maxLength"]) == (3, 80)
    assert (body["desc"]["minLength"], body["desc"]["maxLength"]) == (3, 120)
    assert body["highlight"]["type"] == "boolean"
    assert {"name", "desc", "highlight"} <= set(components["Session"]["properties"])
    listed = {p["name"] for p in schema["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert {"highlight", "search"} <= listed
    imported = schema["paths"]["/api/v1/scores/import"]["post"]
    assert {"200", "400", "401"} <= set(imported["responses"])
    assert imported["requestBody"]["content"]["application/json"]["examples"]


def test_the_schema_documents_the_lifecycle_routes_and_members(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]

    def parameters(path, method):
        return {p["name"]: p for p in paths[path][method].get("parameters", [])}

    heartbeat = paths["/api/v1/sessions/{uid}/heartbeat"]["post"]
    assert heartbeat["operationId"] == "sessions_heartbeat"
    assert {"200", "401", "403", "404", "409"} <= set(heartbeat["responses"])
    destroy = paths["/api/v1/sessions/{uid}"]["delete"]
    assert parameters("/api/v1/sessions/{uid}", "delete")["closeAfter"]["in"] == "query"
    assert {"200", "400", "403", "404", "409"} <= set(destroy["responses"])
    for path in ("/api/v1/sessions", "/api/v1/sessions/count"):
        assert "workspaceId" in parameters(path, "get"), path
    document = schema["components"]["schemas"]["Session"]["properties"]
    assert {"workspaceId", "idleTimeout", "closesAt", "closedAt"} <= set(document)
    body = schema["components"]["schemas"]["SessionInputRequest"]["properties"]
    assert {"workspaceId", "idleTimeout"} <= set(body)
    assert body["idleTimeout"]["minimum"] == 0


# Each route of finding a game, and every `code` it can answer with each status.
FINDING_CODES = {
    ("/api/v1/sessions/quick-join", "post"): {
        "200": set(),
        "201": set(),
        "400": {"invalid", "unknown_filter", "parse_error", "not_an_object", "invalid_text", "unknown_parameter"},
        "401": {"not_authenticated"},
        "403": {"host_forbidden", "users_forbidden", "server_uid_forbidden"},
        "404": {"no_match"},
        "409": {"quota_exceeded", "integrity_conflict"},
        "413": {"body_too_large"},
        "503": {"database_unavailable"},
    },
    ("/api/v1/sessions/join-by-code", "post"): {
        "200": set(),
        "400": {"invalid", "parse_error", "unknown_parameter"},
        "401": {"not_authenticated"},
        "403": {"wrong_password", "password_required"},
        "404": {"code_not_found"},
        "409": {"not_joinable", "session_full", "team_full"},
        "429": {"join_code_throttled", "join_throttled"},
        "503": {"database_unavailable"},
    },
    ("/api/v1/sessions/{uid}/join-code", "post"): {
        "200": set(),
        "400": {"invalid_uuid", "unknown_parameter"},
        "401": {"not_authenticated"},
        "403": {"not_host"},
        "404": {"session_not_found"},
        "409": {"session_closed"},
        "503": {"database_unavailable"},
    },
}


@pytest.mark.parametrize(("path", "method"), list(FINDING_CODES))
def test_quick_join_and_join_codes_document_every_code_they_answer(schema, path, method):
    responses = operation(schema, path, method)["responses"]

    assert set(FINDING_CODES[(path, method)]) <= set(responses)
    for status, codes in FINDING_CODES[(path, method)].items():
        listed = set(re.findall(r"`(\w+)`", responses[status]["description"]))
        assert codes <= listed, f"{method} {path} {status}: {codes - listed}"


def test_the_session_document_has_the_join_code_shown_or_null(schema):
    join_code = schema["components"]["schemas"]["Session"]["properties"]["joinCode"]

    assert join_code["nullable"] is True
    assert operation(schema, "/api/v1/sessions/{uid}/join-code", "post")["operationId"] == "sessions_join_code_rotate"
