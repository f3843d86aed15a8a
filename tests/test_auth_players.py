"""Authentication and players: real JWTs in every header form, refresh, registration,
/players/me, 401 on every authenticated route, and staff holding no API power by itself."""

from __future__ import annotations

import uuid

import pytest

from players_app.models import Player
from sessions_app.models import PERM_TRUNCATE, SCOPE_ANY, GameSession

from .conftest import grant
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # PlayerFactory's password


def obtain(api, username: str, password: str = PASSWORD):
    return api.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["jwt", "JWT", "Bearer"])
def test_a_real_access_token_authenticates_in_every_header_form(api, host, scheme):
    token = obtain(api, "host")
    assert token.status_code == 200
    assert set(token.json()) == {"access", "refresh"}

    api.credentials(HTTP_AUTHORIZATION=f"{scheme} {token.json()['access']}")
    me = api.get("/api/v1/players/me")

    assert me.status_code == 200, me.json()
    assert me.json()["uid"] == str(host.uid)
    assert me.json()["username"] == "host"


def test_the_token_carries_the_scopes_so_a_game_server_acts_without_a_lookup(api, game_server, host, make_session):
    private = make_session(host, visibility="private")
    api.credentials(HTTP_AUTHORIZATION=f"jwt {obtain(api, 'game-server').json()['access']}")

    me = api.get("/api/v1/players/me")
    seen = api.get(f"/api/v1/sessions/{private.uid}")

    assert "session:*" in me.json()["scopes"]
    assert seen.status_code == 200  # session:* sees private sessions


def test_an_unknown_scheme_is_not_accepted(api, host):
    access = obtain(api, "host").json()["access"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {access}")

    response = api.get("/api/v1/players/me")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [{"username": "host", "password": "wrong-password"}, {"username": "nobody", "password": PASSWORD}],
    ids=["wrong-password", "unknown-user"],
)
def test_wrong_credentials_get_no_token(api, host, body):
    response = api.post("/api/v1/auth/token", body, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert "access" not in response.json()


def test_a_token_request_without_fields_is_a_400_naming_them(api):
    response = api.post("/api/v1/auth/token", {}, format="json")

    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"username", "password"}


def test_an_inactive_player_gets_no_token(api, host):
    Player.objects.filter(pk=host.pk).update(is_active=False)

    assert obtain(api, "host").status_code == 401


def test_refresh_gives_a_new_access_token_with_permissions_granted_since(api, host):
    tokens = obtain(api, "host").json()
    grant(host, SCOPE_ANY)

    refreshed = api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    me = api.get("/api/v1/players/me")

    assert refreshed.status_code == 200
    assert me.json()["uid"] == str(host.uid)
    assert "session:*" in me.json()["scopes"]


def test_refresh_refuses_a_garbage_token_and_a_deactivated_player(api, host):
    tokens = obtain(api, "host").json()
    garbage = api.post("/api/v1/auth/token/refresh", {"refresh": "not-a-token"}, format="json")
    Player.objects.filter(pk=host.pk).update(is_active=False)
    deactivated = api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert garbage.status_code == 401
    assert deactivated.status_code == 401
    assert deactivated.json()["code"] == "user_inactive"


def test_an_access_token_is_not_a_refresh_token(api, host):
    tokens = obtain(api, "host").json()

    response = api.post("/api/v1/auth/token/refresh", {"refresh": tokens["access"]}, format="json")

    assert response.status_code == 401


def test_a_refresh_token_does_not_authenticate_requests(api, host):
    api.credentials(HTTP_AUTHORIZATION=f"jwt {obtain(api, 'host').json()['refresh']}")

    assert api.get("/api/v1/players/me").status_code == 401


# --- registration ---------------------------------------------------------------------------


def test_registration_creates_a_player_in_the_players_group_and_its_password_works(api):
    response = api.post("/api/v1/players", {"username": "newbie", "password": "a-long-secret-9"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "newbie"
    player = Player.objects.get(username="newbie")
    assert body["uid"] == str(player.uid)
    assert "password" not in body
    assert list(player.groups.values_list("name", flat=True)) == ["Players"]
    assert player.check_password("a-long-secret-9")
    assert obtain(api, "newbie", "a-long-secret-9").status_code == 200


def test_registration_ignores_a_bad_token(api):
    # Registration needs no authentication, so a stale header must not get in its way.
    api.credentials(HTTP_AUTHORIZATION="jwt garbage")

    response = api.post("/api/v1/players", {"username": "newbie", "password": "a-long-secret-9"}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "a-long-secret-9"}, "username"),
        ({"username": "newbie"}, "password"),
        ({"username": "new bie!", "password": "a-long-secret-9"}, "username"),
        ({"username": "HOST", "password": "a-long-secret-9"}, "username"),
        ({"username": "newbie", "password": "short"}, "password"),
        ({"username": "newbie", "password": "password"}, "password"),
        ({"username": "newbie", "password": "12345678901"}, "password"),
        ({"username": "x" * 151, "password": "a-long-secret-9"}, "username"),
    ],
    ids=["no-username", "no-password", "bad-characters", "taken-any-case", "short", "common", "numeric", "long"],
)
def test_registration_errors_are_400_naming_the_field(api, host, body, field):
    response = api.post("/api/v1/players", body, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}
    assert Player.objects.count() == 1  # only the host


def test_registration_refuses_a_body_that_is_not_an_object(api):
    response = api.post("/api/v1/players", ["newbie"], format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_registration_closed_is_403(api, settings):
    settings.OPEN_REGISTRATION = False

    response = api.post("/api/v1/players", {"username": "newbie", "password": "a-long-secret-9"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "registration_closed"
    assert not Player.objects.filter(username="newbie").exists()


# --- /players/me ----------------------------------------------------------------------------


def test_me_returns_the_caller(api, host):
    response = api.as_(host).get("/api/v1/players/me")

    assert response.status_code == 200
    assert response.json() == {
        "uid": str(host.uid),
        "username": "host",
        "isStaff": False,
        # The Players group's scopes.
        "scopes": ["customise_session", "session:read-player:self"],
    }


# --- 401 everywhere but registration, tokens, schema and docs -------------------------------

SOME_UID = str(uuid.uuid4())
AUTHENTICATED_ROUTES = [
    ("get", "/api/v1/players/me"),
    ("get", "/api/v1/sessions"),
    ("post", "/api/v1/sessions"),
    ("delete", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/count"),
    ("get", f"/api/v1/sessions/{SOME_UID}"),
    ("put", f"/api/v1/sessions/{SOME_UID}"),
    ("patch", f"/api/v1/sessions/{SOME_UID}"),
    ("delete", f"/api/v1/sessions/{SOME_UID}"),
    ("get", f"/api/v1/sessions/{SOME_UID}/join"),
    ("post", f"/api/v1/sessions/{SOME_UID}/join"),
    ("get", f"/api/v1/sessions/{SOME_UID}/leave"),
    ("post", f"/api/v1/sessions/{SOME_UID}/leave"),
    # A malformed uid is still 401 first: authentication comes before everything.
    ("get", "/api/v1/sessions/not-a-uuid"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED_ROUTES)
@pytest.mark.parametrize(
    "header", [None, "jwt garbage", "Bearer", "jwt a.b.c"], ids=["none", "garbage", "empty", "abc"]
)
def test_every_authenticated_route_answers_401(api, method, path, header):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)

    response = getattr(api, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("jwt")
    assert response.json()["status"] == 401


def test_an_expired_access_token_is_401(api, host, settings):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(host)
    token.set_exp(lifetime=timedelta(seconds=-1))
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token}")

    response = api.get("/api/v1/players/me")

    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/schema/", "/api/v1/docs/"])
def test_schema_and_docs_need_no_authentication(api, path):
    assert api.get(path).status_code == 200


# --- staff is not an API power --------------------------------------------------------------


def test_staff_alone_grants_no_api_power(api, staff, host, make_session):
    private = make_session(host, visibility="private")
    public = make_session(host)
    api.as_(staff)

    listed = api.get("/api/v1/sessions")
    private_read = api.get(f"/api/v1/sessions/{private.uid}")
    update = api.patch(f"/api/v1/sessions/{public.uid}", {"data": {"x": 1}}, format="json")
    delete = api.delete(f"/api/v1/sessions/{public.uid}")
    truncate = api.delete("/api/v1/sessions")
    host_for_other = api.post("/api/v1/sessions", {"hostUid": str(host.uid)}, format="json")

    assert [s["uid"] for s in listed.json()] == [str(public.uid)]
    assert private_read.status_code == 404
    assert update.status_code == 403
    assert delete.status_code == 403
    assert truncate.status_code == 403
    assert host_for_other.status_code == 403
    assert GameSession.objects.count() == 2


def test_staff_with_a_real_token_gets_no_scopes(api, staff):
    api.credentials(HTTP_AUTHORIZATION=f"jwt {obtain(api, 'staff').json()['access']}")

    me = api.get("/api/v1/players/me").json()

    assert me["isStaff"] is True
    assert "session:*" not in me["scopes"]
    assert api.delete("/api/v1/sessions").status_code == 403


def test_a_superuser_holds_every_scope_through_its_token(api, host, make_session):
    PlayerFactory(username="root", is_superuser=True, is_staff=True)
    private = make_session(host, visibility="private")
    api.credentials(HTTP_AUTHORIZATION=f"jwt {obtain(api, 'root').json()['access']}")

    assert api.get(f"/api/v1/sessions/{private.uid}").status_code == 200
    assert api.delete("/api/v1/sessions").status_code == 200
    assert GameSession.objects.count() == 0


def test_truncate_permission_in_a_token(api, truncator, make_session, host):
    make_session(host)
    api.credentials(HTTP_AUTHORIZATION=f"jwt {obtain(api, 'truncator').json()['access']}")

    response = api.delete("/api/v1/sessions")

    assert response.status_code == 200
    assert GameSession.objects.count() == 0
    assert PERM_TRUNCATE in api.get("/api/v1/players/me").json()["scopes"]


# --- 401 on the invite, reservation, team, kick and player-view routes ------------------------


INVITE_RESERVATION_TEAM_AND_PLAYER_ROUTES = [
    ("post", f"/api/v1/sessions/{SOME_UID}/invites"),
    ("get", f"/api/v1/sessions/{SOME_UID}/invites"),
    ("post", f"/api/v1/sessions/{SOME_UID}/reservations"),
    ("get", f"/api/v1/sessions/{SOME_UID}/reservations"),
    ("delete", f"/api/v1/sessions/{SOME_UID}/reservations/1"),
    ("post", f"/api/v1/sessions/{SOME_UID}/teams/0/join"),
    ("post", f"/api/v1/sessions/{SOME_UID}/kick"),
    ("post", "/api/v1/invites/1/accept"),
    ("post", "/api/v1/invites/1/decline"),
    ("delete", "/api/v1/invites/1"),
    ("get", "/api/v1/players/me/invites"),
    ("get", f"/api/v1/players/{SOME_UID}/sessions"),
    ("get", "/api/v1/players/not-a-uuid/sessions"),
]


@pytest.mark.parametrize(("method", "path"), INVITE_RESERVATION_TEAM_AND_PLAYER_ROUTES)
def test_invite_reservation_team_kick_and_player_view_routes_answer_401_without_credentials(api, method, path):
    response = getattr(api, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
