"""Refresh tokens that can be taken back: rotation on every refresh, logout, and revocation
of every refresh token of a player whose password changes or who is deactivated (API
services, admin, commands), which reactivation does not undo."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from players_app import services
from players_app.models import Player

from .factories import PlayerFactory
from .test_admin import form_data

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # PlayerFactory's password
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"


def obtain(api, username: str = "host", password: str = PASSWORD) -> dict:
    response = api.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def refresh(api, token: str):
    return api.post(REFRESH, {"refresh": token}, format="json")


def assert_refused(response):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "token_not_valid"
    assert "access" not in response.json()


# --- rotation -------------------------------------------------------------------------------


def test_a_refresh_answers_a_new_refresh_token_and_spends_the_old_one(api, host):
    first = obtain(api)["refresh"]

    rotated = refresh(api, first)
    reused = refresh(api, first)

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first
    assert_refused(reused)
    assert refresh(api, rotated.json()["refresh"]).status_code == 200


def test_the_rotated_access_token_still_carries_the_current_scopes(api, host):
    from sessions_app.models import SCOPE_ANY

    from .conftest import grant

    token = obtain(api)["refresh"]
    grant(host, SCOPE_ANY)

    access = refresh(api, token).json()["access"]
    api.credentials(HTTP_AUTHORIZATION=f"jwt {access}")

    assert "session:*" in api.get("/api/v1/players/me").json()["scopes"]


def test_access_tokens_carry_no_password_fingerprint(api, host):
    from rest_framework_simplejwt.tokens import AccessToken

    tokens = obtain(api)

    assert "pwd" not in AccessToken(tokens["access"]).payload
    assert "pwd" not in AccessToken(refresh(api, tokens["refresh"]).json()["access"]).payload


def test_a_refresh_token_nobody_recorded_is_refused(api, host):
    # Issued before revocation existed: it could never be revoked, so it is not honoured.
    token = obtain(api)["refresh"]
    OutstandingToken.objects.all().delete()

    assert_refused(refresh(api, token))


# --- logout ---------------------------------------------------------------------------------


def test_logout_revokes_the_refresh_token_it_is_given(api, host):
    tokens = obtain(api)
    other_device = obtain(api)

    response = api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert response.content == b""
    assert_refused(refresh(api, tokens["refresh"]))
    assert refresh(api, other_device["refresh"]).status_code == 200  # only that one


def test_logout_needs_no_access_token_and_refuses_what_is_no_live_refresh_token(api, host):
    tokens = obtain(api)
    api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    again = api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
    an_access_token = api.post(LOGOUT, {"refresh": tokens["access"]}, format="json")
    garbage = api.post(LOGOUT, {"refresh": "garbage"}, format="json")
    missing = api.post(LOGOUT, {}, format="json")

    assert_refused(again)
    assert_refused(an_access_token)
    assert_refused(garbage)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "refresh"


# --- password changes and deactivation ------------------------------------------------------


def test_a_password_change_revokes_every_refresh_token_of_the_player(api, host, member):
    phone, laptop = obtain(api)["refresh"], obtain(api)["refresh"]
    members_token = obtain(api, "member")["refresh"]

    services.player_set_password(player=host, password="a-brand-new-secret-4")

    assert_refused(refresh(api, phone))
    assert_refused(refresh(api, laptop))
    assert refresh(api, members_token).status_code == 200
    assert obtain(api, "host", "a-brand-new-secret-4")["refresh"]


def test_a_password_set_outside_the_services_still_ends_earlier_refresh_tokens(api, host):
    # Django's own changepassword command, or a shell: set_password and save.
    token = obtain(api)["refresh"]
    host.set_password("a-brand-new-secret-4")
    host.save()

    assert_refused(refresh(api, token))


def test_a_deactivation_revokes_for_good_reactivation_does_not_bring_tokens_back(api, host):
    token = obtain(api)["refresh"]

    services.player_set_active(player=host, is_active=False)
    while_inactive = refresh(api, token)
    services.player_set_active(player=host, is_active=True)
    after_reactivation = refresh(api, token)

    assert while_inactive.status_code == 401
    assert_refused(after_reactivation)
    assert obtain(api)["refresh"]  # signing in again works


def test_deactivating_in_admin_revokes_and_reactivating_does_not_restore(api, admin_client, host):
    token = obtain(api)["refresh"]
    url = f"/admin/players_app/player/{host.pk}/change/"

    off = admin_client.post(url, form_data(admin_client.get(url), is_active=None))
    on = admin_client.post(url, form_data(admin_client.get(url), is_active="on"))

    assert off.status_code == 302
    assert on.status_code == 302
    assert Player.objects.get(pk=host.pk).is_active
    assert_refused(refresh(api, token))


def test_the_admin_deactivate_action_revokes(api, admin_client, host, member):
    hosts_token, members_token = obtain(api)["refresh"], obtain(api, "member")["refresh"]

    response = admin_client.post(
        "/admin/players_app/player/", {"action": "deactivate_players", "_selected_action": [host.pk]}
    )

    assert response.status_code == 302
    assert not Player.objects.get(pk=host.pk).is_active
    assert Player.objects.get(pk=member.pk).is_active
    services.player_set_active(player=host, is_active=True)
    assert_refused(refresh(api, hosts_token))
    assert refresh(api, members_token).status_code == 200


def test_a_password_change_in_admin_revokes(api, admin_client, host):
    token = obtain(api)["refresh"]

    response = admin_client.post(
        f"/admin/players_app/player/{host.pk}/password/",
        {"password1": "a-brand-new-secret-4", "password2": "a-brand-new-secret-4", "usable_password": "true"},
    )

    assert response.status_code == 302
    assert Player.objects.get(pk=host.pk).check_password("a-brand-new-secret-4")
    assert_refused(refresh(api, token))


def test_tokens_from_issue_token_are_revocable(api, host):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("issue_token", "host", "--refresh", stdout=out, stderr=StringIO())
    token = out.getvalue().split()[-1]
    services.player_set_password(player=host, password="a-brand-new-secret-4")

    assert_refused(refresh(api, token))


def test_revocation_leaves_other_players_alone(api, host):
    other = PlayerFactory(username="other")
    token = obtain(api, "other")["refresh"]

    assert services.player_refresh_tokens_revoke(host) == 0
    assert services.player_refresh_tokens_revoke(other) == 1
    assert_refused(refresh(api, token))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_of_one_token_at_once_get_one_new_token(host):
    """Sent at the same moment on their own connections: the token's row lock lets one
    through, the other finds it spent."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    token = obtain(APIClient())["refresh"]
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            statuses.append(refresh(APIClient(), token).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200, 401, 401, 401]
