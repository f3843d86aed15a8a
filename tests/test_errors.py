"""One error format for the whole API: RFC 9457 problem details with a stable code, for every
status the API answers, for unknown paths and malformed input; never HTML, never a redirect."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from sessions_app.models import GameSession

from .conftest import version_of

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["type"].endswith(body["code"])
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code:
        assert body["code"] == code
    return body


def test_400_lists_field_errors(api, host):
    body = assert_problem(
        api.as_(host).post("/api/v1/sessions", {"numTeams": -1, "visibility": "x"}, format="json"), 400
    )

    assert body["code"] == "invalid"
    assert {e["field"] for e in body["errors"]} == {"numTeams", "visibility"}
    assert all({"field", "code", "message"} == set(e) for e in body["errors"])


def test_401(api):
    assert_problem(api.get("/api/v1/sessions"), 401, "not_authenticated")


def test_401_for_a_bad_token_says_so(api):
    api.credentials(HTTP_AUTHORIZATION="jwt nonsense")

    body = assert_problem(api.get("/api/v1/sessions"), 401)

    assert body["code"] == "token_not_valid"


def test_403(api, host, outsider, make_session):
    session = make_session(host)

    assert_problem(
        api.as_(outsider).patch(f"/api/v1/sessions/{session.uid}", {"data": {}}, format="json"), 403, "not_host"
    )


def test_403_from_a_permission_class(api, host):
    assert_problem(api.as_(host).delete("/api/v1/sessions"), 403, "truncate_forbidden")


def test_404(api, host):
    assert_problem(api.as_(host).get(f"/api/v1/sessions/{uuid.uuid4()}"), 404, "session_not_found")


def test_409_carries_the_current_version(api, host, make_session):
    session = make_session(host)

    body = assert_problem(
        api.as_(host).put(f"/api/v1/sessions/{session.uid}", {"version": 3, "data": {}}, format="json"),
        409,
        "version_conflict",
    )

    assert body["version"] == 0


def test_409_with_the_sessions_status_keeps_its_own_status(api, host, member, make_session):
    session = make_session(host, status="in_progress")

    body = assert_problem(api.as_(member).post(f"/api/v1/sessions/{session.uid}/join"), 409, "not_joinable")

    assert body["sessionStatus"] == "in_progress"


def test_412(api, host, make_session):
    session = make_session(host)

    assert_problem(
        api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"data": {}}, format="json", HTTP_IF_MATCH='"x"'),
        412,
        "precondition_failed",
    )


def test_429_has_retry_after(api, host, member, make_session):
    session = make_session(host, password="pw")
    api.as_(member)
    for _ in range(5):
        api.post(f"/api/v1/sessions/{session.uid}/join", {"password": "no"}, format="json")

    response = api.post(f"/api/v1/sessions/{session.uid}/join", {"password": "pw"}, format="json")

    assert_problem(response, 429, "join_throttled")
    assert int(response["Retry-After"]) > 0


def test_405_is_a_problem_too(api, host):
    assert_problem(api.as_(host).post("/api/v1/sessions/count"), 405)


def test_415_for_a_form_body(api, host):
    assert_problem(api.as_(host).post("/api/v1/sessions", {"numTeams": 1}), 415)


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing", "/api/v2/sessions", "/api/", "/api/v1/sessions/count/extra", "/api/v1/players/someone"],
)
def test_an_unknown_api_path_is_a_json_404(api, host, path):
    api.as_(host)

    for method in ("get", "post", "delete"):
        assert_problem(getattr(api, method)(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/sessions/", "/api/v1/songs/1/"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_an_unknown_api_path_is_a_json_404_whatever_the_method_even_with_csrf_checks(path, method):
    # A browser-like client: Django's CSRF check is on, as it is for real requests.
    client = APIClient(enforce_csrf_checks=True)

    response = client.generic(method, path, data=b'{"a": 1}', content_type="application/json")

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    if method != "HEAD":
        assert response.json()["code"] == "not_found"


def test_an_unknown_api_path_is_404_even_without_credentials(api):
    # Nothing there to protect: no route, no authentication to ask for.
    assert_problem(api.get("/api/v1/nothing"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions/",
        "/api/v1/sessions/count/",
        "/api/v1/players/me/",
        "/api/v1/auth/token/",
        "/api/v1/sessions/{uid}/",
        "/api/v1/sessions/{uid}/join/",
        "/api/v1/sessions/{uid}/leave/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_trailing_slash_is_a_json_404_never_a_redirect(api, host, make_session, path, method):
    session = make_session(host)
    path = path.format(uid=session.uid)

    response = getattr(api.as_(host), method)(path, follow=False)

    assert response.status_code == 404
    assert "Location" not in response
    assert_problem(response, 404, "not_found")


def test_paths_without_a_slash_where_docs_keep_one_are_not_redirected(api):
    response = api.get("/api/v1/docs", follow=False)

    assert response.status_code == 404
    assert "Location" not in response


@pytest.mark.parametrize("suffix", ["", "/join", "/leave"])
@pytest.mark.parametrize("uid", ["nope", "123", "0" * 33, "g" * 32])
def test_a_malformed_uid_is_400(api, host, suffix, uid):
    response = api.as_(host).get(f"/api/v1/sessions/{uid}{suffix}")

    body = assert_problem(response, 400, "invalid_uuid")
    assert body["errors"][0]["field"] == "uid"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_malformed_uid_is_400_on_writes(api, host, method):
    assert_problem(getattr(api.as_(host), method)("/api/v1/sessions/nope", {"data": {}}, format="json"), 400)


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"text"', "42", "null", "true"])
@pytest.mark.parametrize("target", ["create", "put", "patch", "join", "register"])
def test_a_json_body_that_is_not_an_object_is_400(api, host, make_session, body, target):
    session = make_session(host)
    method, path = {
        "create": ("post", "/api/v1/sessions"),
        "put": ("put", f"/api/v1/sessions/{session.uid}"),
        "patch": ("patch", f"/api/v1/sessions/{session.uid}"),
        "join": ("post", f"/api/v1/sessions/{session.uid}/join"),
        "register": ("post", "/api/v1/players"),
    }[target]

    response = getattr(api.as_(host), method)(path, body, content_type="application/json")

    assert_problem(response, 400)
    assert GameSession.objects.count() == 1
    assert GameSession.objects.get().version == 0


@pytest.mark.parametrize("body", ['{"data": ', "{'data': 1}", "{,}", "nan", '{"a": NaN}'])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/sessions"),
        ("patch", "/api/v1/sessions/{uid}"),
        ("post", "/api/v1/sessions/{uid}/join"),
        ("post", "/api/v1/auth/token"),
    ],
)
def test_malformed_json_is_400(api, host, make_session, body, method, path):
    session = make_session(host)

    response = getattr(api.as_(host), method)(path.format(uid=session.uid), body, content_type="application/json")

    assert_problem(response, 400, "parse_error")


def test_a_huge_number_is_400_not_a_500(api, host):
    response = api.as_(host).post("/api/v1/sessions", {"teamSize": 10**40}, format="json")

    assert_problem(response, 400)


def test_a_deeply_wrong_data_value_is_stored_as_given(api, host):
    # Arbitrary JSON objects are fine as data, nested lists and unicode included.
    data = {"ü": [1, {"x": None}], "n": 1.5}

    response = api.as_(host).post("/api/v1/sessions", {"data": data}, format="json")

    assert response.status_code == 201
    assert response.json()["data"] == data


def test_a_bad_query_value_is_never_a_500(api, host):
    api.as_(host)

    for query in ("limit=%00", "sort=%7B%22uid%22", "skip=99999999999999999999", "status=%FF"):
        assert api.get(f"/api/v1/sessions?{query}").status_code == 400, query


@pytest.mark.django_db(transaction=True)
def test_a_token_outliving_its_player_never_gets_a_500(api, host, make_session):
    # Access tokens are trusted without a lookup; a write naming a deleted player hits a
    # foreign key instead (checked at commit: a real transaction here), a 409 and never a 500.
    from rest_framework_simplejwt.tokens import AccessToken

    from players_app.authentication import player_claims

    from .factories import PlayerFactory

    ghost = PlayerFactory(username="ghost")
    token = AccessToken.for_user(ghost)
    for key, value in player_claims(ghost).items():
        token[key] = value
    session = make_session(host)
    ghost.delete()
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token}")

    joined = api.post(f"/api/v1/sessions/{session.uid}/join")
    created = api.post("/api/v1/sessions", {}, format="json")

    assert_problem(joined, 409, "integrity_conflict")
    assert_problem(created, 409, "integrity_conflict")
    assert list(GameSession.objects.values_list("users_doc", flat=True)) == [[str(host.uid)]]


# --- a hidden session answers as a missing one; 401 before 404 --------------------------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("put", "", {"version": 0, "data": {}}),
        ("patch", "", {"data": {}}),
        ("delete", "", None),
        ("get", "/join", None),
        ("post", "/join", {"password": "x"}),
        ("post", "/leave", None),
        ("post", "/kick", {"player": str(uuid.uuid4())}),
        ("post", "/invites", {"player": str(uuid.uuid4())}),
        ("post", "/reservations", {"player": str(uuid.uuid4())}),
        ("post", "/teams/0/join", None),
    ],
)
def test_a_hidden_session_answers_exactly_as_a_missing_one(api, host, outsider, make_session, method, suffix, body):
    hidden = make_session(host, visibility="private", num_teams=1)
    missing = uuid.uuid4()
    api.as_(outsider)

    # One request id for both: the bodies name it (requestId), and must not differ otherwise.
    same_id = {"HTTP_X_REQUEST_ID": "probe"}
    seen = getattr(api, method)(f"/api/v1/sessions/{hidden.uid}{suffix}", body, format="json", **same_id)
    absent = getattr(api, method)(f"/api/v1/sessions/{missing}{suffix}", body, format="json", **same_id)

    assert seen.status_code == absent.status_code == 404
    assert seen.json() == absent.json()
    assert seen["Content-Type"] == absent["Content-Type"] == "application/problem+json"
    assert version_of(hidden) == 0


def test_a_hidden_session_is_404_before_a_malformed_body(api, host, outsider, make_session):
    hidden = make_session(host, visibility="private")

    responses = [
        api.as_(outsider).post(f"{url(hidden)}/join", ["not", "an", "object"], format="json"),
        api.patch(url(hidden), {"numTeams": -1}, format="json"),
        api.delete(f"{url(hidden)}?closeAfter=soon"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]


def test_without_credentials_a_missing_session_is_401_not_404(api):
    assert api.get(f"/api/v1/sessions/{uuid.uuid4()}").status_code == 401
    assert api.post(f"/api/v1/sessions/{uuid.uuid4()}/join", {"team": "x"}, format="json").status_code == 401
