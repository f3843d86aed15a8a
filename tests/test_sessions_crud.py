"""POST /sessions, GET/PUT/PATCH/DELETE /sessions/{uid}, DELETE /sessions: defaults,
validation, hostUid and users rules, the write-only password, ETags and versions, and who may
change what."""

from __future__ import annotations

import uuid

import pytest

from sessions_app.models import GameSession, Membership, Team
from sessions_app.services.membership import session_join, session_leave

from .conftest import grant, version_of
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

DOCUMENT_MEMBERS = {
    "uid",
    "dateCreated",
    "dateModified",
    "version",
    "data",
    "hostUid",
    "invited",
    "numTeams",
    "hasPassword",
    "serverUid",
    "status",
    "teams",
    "teamSize",
    "users",
    "visibility",
}


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def create(api, player, body=None, **kwargs):
    return api.as_(player).post("/api/v1/sessions", body if body is not None else kwargs, format="json")


# --- create ---------------------------------------------------------------------------------


def test_create_with_nothing_gives_the_defaults(api, host):
    response = create(api, host)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert DOCUMENT_MEMBERS <= set(body)
    assert "password" not in body
    assert body["version"] == 0
    assert body["data"] == {}
    assert body["hostUid"] == str(host.uid)
    assert body["invited"] == []
    assert body["numTeams"] == 0
    assert body["teamSize"] == 0
    assert body["teams"] == []
    assert body["hasPassword"] is False
    assert body["serverUid"] is None
    assert body["status"] == "open"
    assert body["visibility"] == "public"
    assert body["users"] == [str(host.uid)]
    assert body["dateCreated"] == body["dateModified"]
    assert body["dateCreated"].endswith("Z")
    assert response["ETag"] == f'"{body["uid"]}-0"'
    session = GameSession.objects.get(uid=body["uid"])
    assert session.host == host
    assert list(session.memberships.values_list("player", flat=True)) == [host.pk]


def test_create_with_every_member(api, game_server):
    # A session:* account: only game servers may set serverUid.
    server = uuid.uuid4()
    body = {
        "data": {"map": "dust", "rules": {"ff": True}},
        "numTeams": 2,
        "teamSize": 3,
        "password": "s3cret",
        "serverUid": str(server),
        "status": "in_progress",
        "visibility": "private",
    }

    response = create(api, game_server, body)

    assert response.status_code == 201, response.json()
    doc = response.json()
    assert doc["data"] == body["data"]
    assert doc["numTeams"] == 2
    assert doc["teamSize"] == 3
    assert doc["hasPassword"] is True
    assert doc["serverUid"] == str(server)
    assert doc["status"] == "in_progress"
    assert doc["visibility"] == "private"
    # The creator is placed in a team as a join would place it: the first one.
    assert doc["teams"] == [
        {"index": 0, "name": "Team 1", "players": [str(game_server.uid)]},
        {"index": 1, "name": "Team 2", "players": []},
    ]
    assert Team.objects.filter(session__uid=doc["uid"]).count() == 2


def test_the_password_is_stored_hashed_and_never_returned(api, host):
    response = create(api, host, password="s3cret")

    session = GameSession.objects.get(uid=response.json()["uid"])
    assert "s3cret" not in response.content.decode()
    assert session.password_hash
    assert "s3cret" not in session.password_hash
    detail = api.get(url(session))
    listed = api.get("/api/v1/sessions")
    assert "password" not in detail.json()
    assert "password" not in listed.json()[0]
    assert detail.json()["hasPassword"] is True


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_or_null_password_means_none(api, host, password):
    response = create(api, host, password=password)

    assert response.status_code == 201
    assert response.json()["hasPassword"] is False
    assert GameSession.objects.get().password_hash == ""


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"status": "closed"}, "status", None),
        ({"status": "closing"}, "status", None),
        ({"status": "paused"}, "status", "invalid_choice"),
        ({"status": 1}, "status", "invalid_choice"),
        ({"visibility": "secret"}, "visibility", "invalid_choice"),
        ({"visibility": None}, "visibility", "null"),
        ({"numTeams": -1}, "numTeams", "min_value"),
        ({"numTeams": 1.5}, "numTeams", "invalid"),
        ({"numTeams": "2"}, "numTeams", "invalid"),
        ({"numTeams": True}, "numTeams", "invalid"),
        ({"numTeams": None}, "numTeams", "null"),
        ({"teamSize": -3}, "teamSize", "min_value"),
        ({"teamSize": "big"}, "teamSize", "invalid"),
        ({"numTeams": 10**9}, "numTeams", "max_value"),
        ({"data": []}, "data", "not_object"),
        ({"data": "x"}, "data", "not_object"),
        ({"data": None}, "data", None),
        ({"serverUid": "not-a-uuid"}, "serverUid", "invalid"),
        ({"hostUid": "not-a-uuid"}, "hostUid", None),
        ({"password": "x" * 129}, "password", "max_length"),
    ],
)
def test_create_validation_errors_are_400_naming_the_member(api, game_server, body, field, code):
    # game_server: may set hostUid, so only validation speaks.
    response = create(api, game_server, body)

    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert field in {e["field"] for e in errors}
    if code:
        assert code in {e["code"] for e in errors if e["field"] == field}
    assert not GameSession.objects.exists()


def test_a_bad_enum_value_names_the_allowed_ones(api, host):
    status = create(api, host, status="paused").json()["errors"][0]["message"]
    visibility = create(api, host, visibility="secret").json()["errors"][0]["message"]

    assert all(word in status for word in ("open", "in_progress", "closing", "closed"))
    assert all(word in visibility for word in ("public", "private"))


def test_closing_or_closed_on_create_names_the_starting_statuses(api, host):
    response = create(api, host, status="closed")

    assert "open" in response.json()["errors"][0]["message"]
    assert "in_progress" in response.json()["errors"][0]["message"]


def test_create_ignores_read_only_members(api, host):
    fake_uid = str(uuid.uuid4())
    body = {
        "uid": fake_uid,
        "dateCreated": "2000-01-01T00:00:00Z",
        "dateModified": "2000-01-01T00:00:00Z",
        "version": 7,
        "teams": [{"index": 5, "name": "x", "players": []}],
        "hasPassword": True,
        "visibility": "private",
    }

    response = create(api, host, body)

    assert response.status_code == 201, response.json()
    doc = response.json()
    assert doc["uid"] != fake_uid
    assert doc["version"] == 0
    assert doc["teams"] == []
    assert doc["hasPassword"] is False
    assert not doc["dateCreated"].startswith("2000")
    assert doc["visibility"] == "private"


def test_create_with_only_the_seeds_placeholder_members_is_201(api, host):
    # The seed's example body, with empty lists: a client that sends every member works.
    body = {"invited": [], "numTeams": 0, "password": "", "status": "open", "teams": [], "teamSize": 0}

    response = create(api, host, body)

    assert response.status_code == 201, response.json()
    assert response.json()["users"] == [str(host.uid)]


# --- hostUid on create ----------------------------------------------------------------------


def test_a_player_may_name_itself_host(api, host):
    response = create(api, host, hostUid=str(host.uid))

    assert response.status_code == 201
    assert response.json()["hostUid"] == str(host.uid)


@pytest.mark.parametrize("value", ["other", None], ids=["someone-else", "null"])
def test_a_player_may_not_set_another_host_or_none(api, host, member, value):
    response = create(api, host, hostUid=str(member.uid) if value else None)

    assert response.status_code == 403
    assert response.json()["code"] == "host_forbidden"
    assert not GameSession.objects.exists()


def test_a_player_naming_another_host_gets_403_even_with_invalid_members(api, host, member):
    # 403 comes before 400: what the caller may do is judged before the body's validity.
    response = create(api, host, hostUid=str(member.uid), numTeams=-1)

    assert response.status_code == 403


def test_session_star_may_create_a_system_session_or_set_any_host(api, game_server, member):
    system = create(api, game_server, hostUid=None)
    hosted = create(api, game_server, hostUid=str(member.uid), users=[str(member.uid)])

    assert system.status_code == 201
    assert system.json()["hostUid"] is None
    assert GameSession.objects.get(uid=system.json()["uid"]).host is None
    assert hosted.status_code == 201
    assert hosted.json()["hostUid"] == str(member.uid)


def test_session_star_naming_an_unknown_host_is_400(api, game_server):
    response = create(api, game_server, hostUid=str(uuid.uuid4()))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "hostUid"


# --- users on create ------------------------------------------------------------------------


def test_a_player_naming_only_itself_in_users_is_ignored(api, host):
    response = create(api, host, users=[str(host.uid)])

    assert response.status_code == 201
    assert response.json()["users"] == [str(host.uid)]


def test_a_player_sending_empty_users_still_becomes_the_first_member(api, host):
    # An empty list names nobody else: nothing to refuse, and the creator is still the member.
    response = create(api, host, users=[])

    assert response.status_code == 201, response.json()
    assert response.json()["users"] == [str(host.uid)]


@pytest.mark.parametrize("include_self", [False, True])
def test_a_player_may_not_put_others_in_a_session(api, host, member, include_self):
    users = [str(host.uid), str(member.uid)] if include_self else [str(member.uid)]

    response = create(api, host, users=users)

    assert response.status_code == 403
    assert response.json()["code"] == "users_forbidden"
    assert not Membership.objects.exists()


def test_a_player_naming_others_gets_403_before_a_400(api, host):
    response = create(api, host, users=["not-a-uuid"])

    assert response.status_code == 403


def test_session_star_matchmaking_places_the_named_users_and_not_itself(api, game_server):
    players = [PlayerFactory() for _ in range(3)]

    response = create(api, game_server, users=[str(p.uid) for p in players], numTeams=2, teamSize=2, hostUid=None)

    assert response.status_code == 201, response.json()
    doc = response.json()
    assert doc["users"] == [str(p.uid) for p in players]
    assert str(game_server.uid) not in doc["users"]
    # Placed as joins would place them: smallest team, lowest index on ties.
    assert [t["players"] for t in doc["teams"]] == [
        [str(players[0].uid), str(players[2].uid)],
        [str(players[1].uid)],
    ]


def test_session_star_names_itself_to_be_a_member(api, game_server, member):
    response = create(api, game_server, users=[str(game_server.uid), str(member.uid)])

    assert response.json()["users"] == [str(game_server.uid), str(member.uid)]


def test_session_star_may_create_an_empty_session(api, game_server):
    response = create(api, game_server, users=[], hostUid=None)

    assert response.status_code == 201
    assert response.json()["users"] == []


def test_session_star_naming_an_unknown_user_is_400(api, game_server):
    response = create(api, game_server, users=[str(uuid.uuid4())])

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "users[0]"
    assert not GameSession.objects.exists()


def test_session_star_naming_more_users_than_places_is_409(api, game_server):
    players = [PlayerFactory() for _ in range(3)]

    response = create(api, game_server, users=[str(p.uid) for p in players], numTeams=1, teamSize=2)

    assert response.status_code == 409
    assert response.json()["code"] == "session_full"
    assert not GameSession.objects.exists()


def test_a_duplicate_user_is_a_single_member(api, game_server, member):
    response = create(api, game_server, users=[str(member.uid), str(member.uid)])

    assert response.json()["users"] == [str(member.uid)]


# --- read -----------------------------------------------------------------------------------


def test_get_returns_the_document_with_a_strong_etag(api, host, make_session):
    session = make_session(host, data={"a": 1})

    response = api.as_(host).get(url(session))

    assert response.status_code == 200
    assert response.json()["uid"] == str(session.uid)
    assert response.json()["data"] == {"a": 1}
    assert response["ETag"] == f'"{session.uid}-0"'
    assert not response["ETag"].startswith("W/")


def test_if_none_match_with_the_current_etag_is_304_and_a_stale_one_200(api, host, make_session):
    session = make_session(host)
    api.as_(host)
    etag = api.get(url(session))["ETag"]

    not_modified = api.get(url(session), HTTP_IF_NONE_MATCH=etag)
    api.patch(url(session), {"data": {"b": 2}}, format="json")
    modified = api.get(url(session), HTTP_IF_NONE_MATCH=etag)

    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    assert not_modified.content == b""
    assert modified.status_code == 200
    assert modified["ETag"] == f'"{session.uid}-1"'


def test_if_none_match_accepts_a_list_and_star(api, host, make_session):
    session = make_session(host)
    api.as_(host)
    etag = api.get(url(session))["ETag"]

    listed = api.get(url(session), HTTP_IF_NONE_MATCH=f'"other", {etag}')
    star = api.get(url(session), HTTP_IF_NONE_MATCH="*")

    assert listed.status_code == 304
    assert star.status_code == 304


def test_an_outsider_cannot_see_a_private_session(api, host, outsider, make_session):
    session = make_session(host, visibility="private")

    response = api.as_(outsider).get(url(session))

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_an_unknown_session_is_404_and_a_malformed_uid_400(api, host):
    api.as_(host)

    assert api.get(f"/api/v1/sessions/{uuid.uuid4()}").status_code == 404
    assert api.get("/api/v1/sessions/abc").status_code == 400


# --- update: versions and preconditions -----------------------------------------------------


def test_put_needs_version(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).put(url(session), {"data": {"x": 1}}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "version_required"
    assert response.json()["errors"][0]["field"] == "version"
    session.refresh_from_db()
    assert session.data == {}


def test_put_with_the_current_version_updates_and_keeps_what_it_leaves_out(api, host, make_session):
    session = make_session(host, data={"a": 1}, visibility="private", num_teams=2)

    response = api.as_(host).put(url(session), {"version": 0, "data": {"b": 2}}, format="json")

    assert response.status_code == 200, response.json()
    doc = response.json()
    assert doc["data"] == {"b": 2}
    assert doc["version"] == 1
    assert doc["visibility"] == "private"
    assert doc["numTeams"] == 2
    assert response["ETag"] == f'"{session.uid}-1"'
    session.refresh_from_db()
    assert session.version == 1
    assert session.data == {"b": 2}


def test_patch_without_version_updates(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).patch(url(session), {"visibility": "private"}, format="json")

    assert response.status_code == 200
    assert response.json()["visibility"] == "private"
    assert response.json()["version"] == 1


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_stale_version_is_409_with_the_current_version(api, host, make_session, method):
    session = make_session(host)
    api.as_(host).patch(url(session), {"data": {"v": 1}}, format="json")

    response = getattr(api, method)(url(session), {"version": 0, "data": {"v": 2}}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert response.json()["version"] == 1
    session.refresh_from_db()
    assert session.data == {"v": 1}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_stale_is_412_and_current_passes(api, host, make_session, method):
    session = make_session(host)
    api.as_(host)
    old = api.get(url(session))["ETag"]
    api.patch(url(session), {"data": {"v": 1}}, format="json")
    current = api.get(url(session))["ETag"]

    stale = getattr(api, method)(url(session), {"version": 1, "data": {"v": 2}}, format="json", HTTP_IF_MATCH=old)
    fresh = getattr(api, method)(url(session), {"version": 1, "data": {"v": 3}}, format="json", HTTP_IF_MATCH=current)

    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    assert fresh.status_code == 200
    assert fresh.json()["data"] == {"v": 3}


def test_if_match_is_compared_exactly(api, host, make_session):
    session = make_session(host)
    api.as_(host)

    weak = api.patch(url(session), {"data": {"v": 1}}, format="json", HTTP_IF_MATCH=f'W/"{session.uid}-0"')
    unquoted = api.patch(url(session), {"data": {"v": 1}}, format="json", HTTP_IF_MATCH=f"{session.uid}-0")
    star = api.patch(url(session), {"data": {"v": 1}}, format="json", HTTP_IF_MATCH="*")

    assert weak.status_code == 412
    assert unquoted.status_code == 412
    assert star.status_code == 200


def test_412_wins_over_a_stale_version(api, host, make_session):
    session = make_session(host)
    api.as_(host).patch(url(session), {"data": {"v": 1}}, format="json")

    response = api.patch(url(session), {"version": 0, "data": {}}, format="json", HTTP_IF_MATCH='"nope"')

    assert response.status_code == 412


def test_an_update_with_current_values_keeps_the_version(api, host, make_session):
    session = make_session(host, data={"a": 1}, num_teams=2, team_size=2, password="pw")
    body = {
        "version": 0,
        "data": {"a": 1},
        "numTeams": 2,
        "teamSize": 2,
        "password": "pw",
        "status": "open",
        "visibility": "public",
        "hostUid": str(host.uid),
        "users": [str(host.uid)],
        "serverUid": None,
    }

    response = api.as_(host).put(url(session), body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 0
    session.refresh_from_db()
    assert session.version == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"color": "red"}, {"version": 0}, {"uid": str(uuid.uuid4()), "teams": [], "hasPassword": True}],
    ids=["empty", "unknown", "only-version", "only-read-only"],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_body_with_nothing_to_update_is_400(api, host, make_session, body, method):
    session = make_session(host)
    body = {"version": 0, **body} if method == "put" else body

    response = getattr(api.as_(host), method)(url(session), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "nothing_to_update"


def test_read_only_members_in_an_update_are_ignored(api, host, make_session):
    session = make_session(host)
    fake = str(uuid.uuid4())

    response = api.as_(host).patch(
        url(session),
        {"uid": fake, "dateCreated": "2000-01-01T00:00:00Z", "teams": [{"index": 3}], "hasPassword": True, "data": {}},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["uid"] == str(session.uid)
    assert response.json()["hasPassword"] is False
    assert response.json()["version"] == 0  # data was already {}


def test_an_update_may_not_change_users(api, host, member, make_session):
    session = make_session(host)

    response = api.as_(host).patch(url(session), {"users": [str(host.uid), str(member.uid)]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "users"
    assert list(session.memberships.values_list("player", flat=True)) == [host.pk]


def test_changing_users_is_400_before_a_stale_if_match_or_version(api, host, member, make_session):
    session = make_session(host)

    response = api.as_(host).patch(
        url(session), {"version": 9, "users": [str(member.uid)]}, format="json", HTTP_IF_MATCH='"stale"'
    )

    assert response.status_code == 400
    assert response.json()["code"] == "read_only"


def test_users_naming_the_current_members_in_any_order_is_ignored(api, host, member, make_session):
    session = make_session(host)
    api.as_(member).post(f"{url(session)}/join")

    response = api.as_(host).patch(
        url(session), {"users": [str(member.uid), str(host.uid)], "data": {"x": 1}}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["users"] == [str(host.uid), str(member.uid)]


def test_update_validation_errors_are_400(api, host, make_session):
    session = make_session(host)
    api.as_(host)

    responses = [
        api.patch(url(session), {"status": "bogus"}, format="json"),
        api.patch(url(session), {"numTeams": -1}, format="json"),
        api.patch(url(session), {"data": [1]}, format="json"),
        api.put(url(session), {"version": -1, "data": {}}, format="json"),
        api.put(url(session), {"version": "0", "data": {}}, format="json"),
    ]

    assert [r.status_code for r in responses] == [400] * 5
    session.refresh_from_db()
    assert session.version == 0


def test_setting_and_clearing_the_password(api, host, make_session):
    session = make_session(host)
    api.as_(host)

    set_ = api.patch(url(session), {"password": "pw"}, format="json")
    same = api.patch(url(session), {"password": "pw"}, format="json")
    cleared = api.patch(url(session), {"password": ""}, format="json")

    assert set_.json()["hasPassword"] is True
    assert set_.json()["version"] == 1
    assert same.json()["version"] == 1
    assert "password" not in same.json()
    assert cleared.json()["hasPassword"] is False
    assert cleared.json()["version"] == 2


def test_status_changes_by_update(api, host, make_session):
    session = make_session(host)
    api.as_(host)

    started = api.patch(url(session), {"status": "in_progress"}, format="json")
    closing = api.patch(url(session), {"status": "closing"}, format="json")

    assert started.json()["status"] == "in_progress"
    assert closing.status_code == 409


# --- who may update -------------------------------------------------------------------------


def test_the_host_hands_over_to_a_member_but_not_to_a_non_member(api, host, member, outsider, make_session):
    session = make_session(host)
    api.as_(member).post(f"{url(session)}/join", format="json")
    api.as_(host)

    to_outsider = api.patch(url(session), {"hostUid": str(outsider.uid)}, format="json")
    to_unknown = api.patch(url(session), {"hostUid": str(uuid.uuid4())}, format="json")
    to_member = api.patch(url(session), {"hostUid": str(member.uid)}, format="json")
    afterwards = api.patch(url(session), {"data": {"x": 1}}, format="json")

    assert to_outsider.status_code == 400
    assert to_outsider.json()["errors"][0]["field"] == "hostUid"
    assert to_unknown.status_code == 400
    assert to_member.status_code == 200
    assert to_member.json()["hostUid"] == str(member.uid)
    assert afterwards.status_code == 403  # no longer the host


def test_the_host_may_not_drop_the_host(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).patch(url(session), {"hostUid": None}, format="json")

    assert response.status_code == 403
    session.refresh_from_db()
    assert session.host == host


def test_a_member_who_is_not_the_host_gets_403(api, host, member, make_session):
    session = make_session(host)
    api.as_(member).post(f"{url(session)}/join", format="json")

    response = api.patch(url(session), {"data": {"x": 1}}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "not_host"


def test_a_non_host_gets_403_before_400(api, host, outsider, make_session):
    session = make_session(host)

    response = api.as_(outsider).patch(url(session), {"numTeams": -5}, format="json")

    assert response.status_code == 403


def test_an_outsider_updating_a_private_session_gets_404(api, host, outsider, make_session):
    session = make_session(host, visibility="private")
    api.as_(outsider)

    assert api.patch(url(session), {"data": {"x": 1}}, format="json").status_code == 404
    assert api.put(url(session), {"version": 0, "data": {"x": 1}}, format="json").status_code == 404
    assert api.delete(url(session)).status_code == 404


def test_a_member_of_a_system_session_may_change_only_data(api, game_server, member, make_session):
    session = make_session(game_server, host_uid=None, users=[str(member.uid)])
    api.as_(member)

    data = api.patch(url(session), {"data": {"score": 3}}, format="json")
    visibility = api.patch(url(session), {"visibility": "private"}, format="json")
    both = api.patch(url(session), {"data": {"score": 4}, "numTeams": 2}, format="json")
    take_host = api.patch(url(session), {"hostUid": str(member.uid)}, format="json")

    assert data.status_code == 200
    assert data.json()["data"] == {"score": 3}
    assert visibility.status_code == 403
    assert both.status_code == 403
    assert take_host.status_code == 403
    session.refresh_from_db()
    assert session.data == {"score": 3}
    assert session.host is None


def test_a_non_member_may_not_change_a_system_session(api, game_server, outsider, make_session):
    session = make_session(game_server, host_uid=None, users=[])

    response = api.as_(outsider).patch(url(session), {"data": {"x": 1}}, format="json")

    assert response.status_code == 403


def test_session_star_may_change_anything(api, host, member, game_server, make_session):
    session = make_session(host, visibility="private")

    response = api.as_(game_server).patch(
        url(session),
        {"data": {"x": 1}, "visibility": "public", "hostUid": None, "numTeams": 2, "teamSize": 5},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["hostUid"] is None
    assert response.json()["numTeams"] == 2
    assert response.json()["version"] == 1  # one update, one version


# --- delete and truncate --------------------------------------------------------------------


def test_the_host_deletes_a_session(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).delete(url(session))

    assert response.status_code == 200
    assert not GameSession.objects.filter(pk=session.pk).exists()
    assert not Membership.objects.exists()
    assert api.get(url(session)).status_code == 404


def test_a_member_may_not_delete_and_session_star_may(api, host, member, game_server, make_session):
    session = make_session(host)
    api.as_(member).post(f"{url(session)}/join", format="json")

    refused = api.as_(member).delete(url(session))
    allowed = api.as_(game_server).delete(url(session))

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert not GameSession.objects.exists()


def test_truncate_needs_its_own_permission(api, host, game_server, truncator, make_session):
    make_session(host)
    make_session(game_server, host_uid=None, users=[])

    by_host = api.as_(host).delete("/api/v1/sessions")
    by_server = api.as_(game_server).delete("/api/v1/sessions")
    assert GameSession.objects.count() == 2
    by_truncator = api.as_(truncator).delete("/api/v1/sessions")

    assert by_host.status_code == 403
    assert by_server.status_code == 403  # session:* alone is not enough
    assert by_server.json()["code"] == "truncate_forbidden"
    assert by_truncator.status_code == 200
    assert GameSession.objects.count() == 0


def test_permissions_are_read_per_request(api, host, make_session):
    # A player granted truncate later may truncate (force_authenticate with a fresh instance).
    make_session(host)
    assert api.as_(host).delete("/api/v1/sessions").status_code == 403

    granted = grant(host, "truncate_sessions")

    assert api.as_(granted).delete("/api/v1/sessions").status_code == 200


# --- update and delete: which refusal comes first (403, 400, 412, 409) ------------------------


STALE = '"stale-etag"'


@pytest.fixture
def shared(host, member, make_session):
    """A session of host and member, moved to version 1 so that version 0 is stale."""
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    assert version_of(session) == 1
    return session


@pytest.mark.parametrize("precondition", ["if_match", "version"])
@pytest.mark.parametrize("target", ["non_member", "unknown"])
def test_handing_the_host_to_a_non_member_is_400_before_412_and_409(api, host, outsider, shared, precondition, target):
    # Given a stale If-Match or a stale version, and a hostUid the host may not hand over to
    new_host = str(outsider.uid) if target == "non_member" else str(uuid.uuid4())
    body = {"hostUid": new_host}
    headers = {}
    if precondition == "if_match":
        headers["HTTP_IF_MATCH"] = STALE
    else:
        body["version"] = 0

    # When the host asks for it
    response = api.as_(host).patch(url(shared), body, format="json", **headers)

    # Then the malformed request is judged before its preconditions
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "hostUid"
    stored = GameSession.objects.get(pk=shared.pk)
    assert (stored.host_id, stored.version) == (host.pk, 1)


@pytest.mark.parametrize("precondition", ["if_match", "version", "invalid_member"])
def test_the_host_dropping_the_host_is_403_before_400_412_and_409(api, host, shared, precondition):
    body = {"hostUid": None}
    headers = {}
    if precondition == "if_match":
        headers["HTTP_IF_MATCH"] = STALE
    elif precondition == "version":
        body["version"] = 0
    else:
        body["numTeams"] = -1

    response = api.as_(host).patch(url(shared), body, format="json", **headers)

    assert (response.status_code, response.json()["code"]) == (403, "host_forbidden")
    assert GameSession.objects.get(pk=shared.pk).host_id == host.pk


def test_the_current_host_who_is_no_longer_a_member_may_be_named_again(api, host, make_session):
    # A hosted session whose last member left is closed and keeps its host, who is no longer
    # a member: a PUT of the current values (hostUid included) changes nothing and is 200.
    session = make_session(host)
    session_leave(session_id=session.pk, actor=host)
    current = api.as_(host).get(url(session)).json()

    response = api.put(url(session), {"version": current["version"], "hostUid": str(host.uid)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["version"] == current["version"]


def test_session_star_may_hand_the_host_to_a_non_member(api, host, outsider, game_server, shared):
    response = api.as_(game_server).patch(url(shared), {"hostUid": str(outsider.uid)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["hostUid"] == str(outsider.uid)
    assert GameSession.objects.get(pk=shared.pk).host_id == outsider.pk


@pytest.mark.parametrize("precondition", ["if_match", "version"])
def test_a_non_host_is_403_before_412_and_409(api, member, shared, precondition):
    body = {"data": {"x": 1}}
    headers = {"HTTP_IF_MATCH": STALE} if precondition == "if_match" else {}
    if precondition == "version":
        body["version"] = 0

    response = api.as_(member).patch(url(shared), body, format="json", **headers)

    assert (response.status_code, response.json()["code"]) == (403, "not_host")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_invalid_value_is_400_before_a_stale_if_match(api, host, shared, method):
    response = getattr(api.as_(host), method)(
        url(shared), {"version": 1, "numTeams": -1}, format="json", HTTP_IF_MATCH=STALE
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "numTeams"


def test_put_without_version_is_400_before_a_stale_if_match(api, host, shared):
    response = api.as_(host).put(url(shared), {"data": {"x": 1}}, format="json", HTTP_IF_MATCH=STALE)

    assert (response.status_code, response.json()["code"]) == (400, "version_required")


def test_users_naming_only_the_current_members_is_nothing_to_update(api, host, member, shared):
    # `users` naming the current members is ignored: a body with nothing else updates nothing.
    response = api.as_(host).patch(url(shared), {"users": [str(member.uid), str(host.uid)]}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "nothing_to_update")
    assert version_of(shared) == 1


def test_a_member_deleting_with_a_malformed_close_after_is_403(api, member, shared):
    response = api.as_(member).delete(f"{url(shared)}?closeAfter=soon")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")
    assert GameSession.objects.get(pk=shared.pk).status == "open"
