"""serverUid names the game server running a session: only session:* accounts (game servers)
may set it, on create and on PUT/PATCH; a player is refused with 403 before the body is
validated, and nothing is stored."""

from __future__ import annotations

import uuid

import pytest

from sessions_app.models import GameSession
from sessions_app.services.sessions import session_create, session_update
from sessions_project.errors import Forbidden

LIST = "/api/v1/sessions"


def url(session) -> str:
    return f"{LIST}/{session.uid}"


@pytest.mark.parametrize("value", [str(uuid.uuid4()), "not-a-uuid", 12], ids=["uid", "malformed", "number"])
def test_a_player_may_not_claim_a_server_on_create(api, host, value):
    response = api.as_(host).post(LIST, {"serverUid": value, "numTeams": -1}, format="json")

    assert response.status_code == 403  # before the body's 400s (numTeams, a malformed uid)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "server_uid_forbidden"
    assert not GameSession.objects.exists()


def test_a_player_may_send_a_null_server_on_create(api, host):
    response = api.as_(host).post(LIST, {"serverUid": None}, format="json")

    assert response.status_code == 201
    assert response.json()["serverUid"] is None


def test_a_game_server_sets_its_uid_on_create_and_is_found_by_it(api, game_server):
    server = uuid.uuid4()

    response = api.as_(game_server).post(LIST, {"serverUid": str(server)}, format="json")

    assert response.status_code == 201
    assert response.json()["serverUid"] == str(server)
    assert [s["uid"] for s in api.get(f"{LIST}?serverUid={server}").json()] == [response.json()["uid"]]


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize("value", [str(uuid.uuid4()), None, "bogus"], ids=["other", "null", "malformed"])
def test_the_host_may_not_change_the_server(api, host, game_server, make_session, method, value):
    server = uuid.uuid4()
    session = make_session(game_server, host_uid=str(host.uid), users=[str(host.uid)], server_uid=server)

    response = getattr(api.as_(host), method)(url(session), {"version": 0, "serverUid": value}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "server_uid_forbidden"
    session.refresh_from_db()
    assert (session.server_uid, session.version) == (server, 0)


def test_the_host_may_not_claim_a_server_for_its_own_session(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).patch(url(session), {"serverUid": str(uuid.uuid4()), "data": {"x": 1}}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "server_uid_forbidden"
    session.refresh_from_db()
    assert (session.server_uid, session.data, session.version) == (None, {}, 0)


def test_the_host_may_send_the_current_server_back(api, host, game_server, make_session):
    server = uuid.uuid4()
    session = make_session(game_server, host_uid=str(host.uid), users=[str(host.uid)], server_uid=server)

    response = api.as_(host).put(
        url(session), {"version": 0, "serverUid": str(server).upper(), "data": {"x": 1}}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["serverUid"] == str(server)
    assert response.json()["version"] == 1


def test_a_game_server_moves_a_session_to_another_server(api, host, game_server, make_session):
    session = make_session(host)
    server = uuid.uuid4()

    response = api.as_(game_server).patch(url(session), {"serverUid": str(server)}, format="json")

    assert response.status_code == 200
    assert response.json()["serverUid"] == str(server)


def test_the_services_refuse_a_player_setting_a_server(host, make_session):
    # Admin and commands call the same services: the rule holds there too.
    with pytest.raises(Forbidden):
        session_create(actor=host, values={"server_uid": uuid.uuid4()})
    session = make_session(host)
    with pytest.raises(Forbidden):
        session_update(session_id=session.pk, actor=host, values={"server_uid": uuid.uuid4()})
    assert GameSession.objects.get().server_uid is None
