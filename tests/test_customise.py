"""Naming, describing and highlighting a session (seed 002's PATCH), and finding sessions by
highlight and by name. Only the host holding customise_session (every player holds it through
the Players group) or a session:* account; anyone else 403, checked before the values."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from players_app.models import Player
from players_app.services import default_group
from sessions_app.models import PERM_CUSTOMISE, GameSession
from sessions_app.services.sessions import session_create

from .conftest import grant
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def url(session):
    return f"/api/v1/sessions/{session.uid}"


def test_the_host_names_describes_and_highlights_its_session(api, session, host):
    before = api.as_(host).get(url(session)).json()

    response = api.patch(url(session), {"name": "Friday league", "desc": "Week 3", "highlight": True}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["name"], body["desc"], body["highlight"]) == ("Friday league", "Week 3", True)
    assert body["version"] == before["version"] + 1
    assert body == api.get(url(session)).json()  # the answer is the whole document after the change
    session.refresh_from_db()
    assert (session.name, session.desc, session.highlight) == ("Friday league", "Week 3", True)


def test_each_member_alone_is_a_valid_patch_and_the_others_keep_their_values(api, session, host):
    client = api.as_(host)
    client.patch(url(session), {"name": "Old name", "desc": "Old desc"}, format="json")

    highlighted = client.patch(url(session), {"highlight": True}, format="json").json()
    renamed = client.patch(url(session), {"name": "New name"}, format="json").json()

    assert (highlighted["name"], highlighted["desc"], highlighted["highlight"]) == ("Old name", "Old desc", True)
    assert (renamed["name"], renamed["desc"], renamed["highlight"]) == ("New name", "Old desc", True)


@pytest.mark.parametrize(
    ("field", "length", "status"),
    [("name", 2, 400), ("name", 3, 200), ("name", 80, 200), ("name", 81, 400)]
    + [("desc", 2, 400), ("desc", 3, 200), ("desc", 120, 200), ("desc", 121, 400)],
)
def test_name_is_3_to_80_characters_and_desc_3_to_120(api, session, host, field, length, status):
    value = "x" * length

    response = api.as_(host).patch(url(session), {field: value}, format="json")

    assert response.status_code == status
    session.refresh_from_db()
    if status == 200:
        assert response.json()[field] == value
        assert getattr(session, field) == value
    else:
        assert [e["field"] for e in response.json()["errors"]] == [field]
        assert getattr(session, field) == ""
        assert session.version == 1  # untouched since the member joined


@pytest.mark.parametrize("body", [{"highlight": "maybe"}, {"highlight": None}, {"name": None}, {"name": "   "}])
def test_bad_values_are_400(api, session, host, body):
    response = api.as_(host).patch(url(session), body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == next(iter(body))


@pytest.mark.parametrize("body", [{}, {"highlighted": True}, {"title": "x"}])
def test_a_patch_naming_no_member_the_session_knows_is_400(api, session, host, body):
    # The seed's example says `highlighted`; the member is `highlight`.
    response = api.as_(host).patch(url(session), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "nothing_to_update"
    session.refresh_from_db()
    assert session.highlight is False


@pytest.mark.parametrize("body", [{"name": "Good name"}, {"name": "x"}, {"highlight": True}, {"desc": "x" * 500}])
def test_a_member_who_is_not_the_host_gets_403_before_the_values_are_checked(api, session, member, body):
    response = api.as_(member).patch(url(session), body, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "customise_forbidden"
    session.refresh_from_db()
    assert (session.name, session.highlight) == ("", False)


def test_an_outsider_gets_403_on_a_public_session_and_404_on_a_private_one(api, make_session, host, outsider):
    public, private = make_session(host), make_session(host, visibility="private")
    client = api.as_(outsider)

    assert client.patch(url(public), {"name": "Mine now"}, format="json").status_code == 403
    assert client.patch(url(private), {"name": "x"}, format="json").status_code == 404


def test_staff_take_customise_session_from_the_players_group_and_the_host_gets_403(api, session, host, staff):
    # Given staff who may edit groups in admin remove customise_session from Players
    staff = grant(staff, "change_group", "view_group")
    players = default_group()
    kept = players.permissions.exclude(codename="customise_session").values_list("pk", flat=True)
    browser = Client()
    browser.force_login(staff)
    saved = browser.post(f"/admin/auth/group/{players.pk}/change/", {"name": "Players", "permissions": list(kept)})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert not players.permissions.filter(codename="customise_session").exists()
    host = Player.objects.get(pk=host.pk)  # permissions are read afresh (a JWT at its next refresh)

    # When the host names its session
    refused = api.as_(host).patch(url(session), {"name": "Friday league"}, format="json")
    # Then 403, though the host may still change what is not customisation
    other = api.patch(url(session), {"data": {"map": "dust"}}, format="json")

    assert refused.status_code == 403
    assert refused.json()["code"] == "customise_forbidden"
    assert other.status_code == 200
    session.refresh_from_db()
    assert session.name == ""

    # And given back to the host alone, it works again
    host.user_permissions.add(Permission.objects.get(codename="customise_session"))
    host = Player.objects.get(pk=host.pk)
    assert api.as_(host).patch(url(session), {"name": "Friday league"}, format="json").status_code == 200


def test_session_star_accounts_and_superusers_customise_any_session(api, session, game_server):
    root = PlayerFactory(username="root", is_superuser=True, in_players_group=False)

    by_server = api.as_(game_server).patch(url(session), {"name": "Server named", "highlight": True}, format="json")
    by_root = api.as_(root).patch(url(session), {"desc": "Root described"}, format="json")

    assert (by_server.status_code, by_root.status_code) == (200, 200)
    session.refresh_from_db()
    assert (session.name, session.desc, session.highlight) == ("Server named", "Root described", True)


def test_nobody_but_session_star_customises_a_session_without_a_host(api, game_server, member):
    system = session_create(actor=game_server, values={"host_uid": None, "users": [str(member.uid)]})

    by_member = api.as_(member).patch(url(system), {"name": "Ours"}, format="json")
    by_server = api.as_(game_server).patch(url(system), {"name": "Ours"}, format="json")

    assert by_member.status_code == 403
    assert by_server.status_code == 200


def test_the_same_values_again_change_nothing(api, session, host):
    client = api.as_(host)
    first = client.patch(url(session), {"name": "Same"}, format="json").json()
    again = client.patch(url(session), {"name": "Same"}, format="json").json()
    assert again["version"] == first["version"]


# --- finding sessions by highlight and name -------------------------------------------------


def test_a_players_highlighted_sessions_are_one_request(api, make_session, host, member):
    starred = make_session(host)
    plain = make_session(host)
    others = make_session(member)
    api.as_(host).patch(url(starred), {"highlight": True, "name": "Best run"}, format="json")
    api.as_(member).patch(url(others), {"highlight": True}, format="json")

    highlighted = api.as_(host).get("/api/v1/sessions", {"highlight": "true", "hostUid": str(host.uid)}).json()
    not_highlighted = api.get("/api/v1/sessions", {"highlight": "false", "hostUid": str(host.uid)}).json()
    all_highlighted = api.get("/api/v1/sessions", {"highlight": "true"}).json()
    counted = api.get("/api/v1/sessions/count", {"highlight": "true"}).json()

    assert [s["uid"] for s in highlighted] == [str(starred.uid)]
    assert [s["uid"] for s in not_highlighted] == [str(plain.uid)]
    assert {s["uid"] for s in all_highlighted} == {str(starred.uid), str(others.uid)}
    assert counted == {"count": 2}


def test_sessions_are_searched_by_part_of_their_name_in_any_case(api, make_session, host):
    friday, saturday, _ = make_session(host), make_session(host), make_session(host)
    client = api.as_(host)
    client.patch(url(friday), {"name": "Friday League"}, format="json")
    client.patch(url(saturday), {"name": "Saturday league"}, format="json")

    leagues = client.get("/api/v1/sessions", {"search": "LEAGUE", "sort": '{"name":"ASC"}'}).json()
    fridays = client.get("/api/v1/sessions", {"search": "frid"}).json()

    assert [s["name"] for s in leagues] == ["Friday League", "Saturday league"]
    assert [s["uid"] for s in fridays] == [str(friday.uid)]


def test_a_malformed_highlight_filter_is_400(api, member):
    response = api.as_(member).get("/api/v1/sessions", {"highlight": "sometimes"})
    assert response.status_code == 400  # not ignored: that would answer every session
    assert response.json()["errors"][0]["field"] == "highlight"


def test_search_and_highlight_respect_visibility(api, make_session, host, outsider):
    hidden = make_session(host, visibility="private")
    api.as_(host).patch(url(hidden), {"name": "Secret league", "highlight": True}, format="json")

    found = api.as_(outsider).get("/api/v1/sessions", {"search": "league", "highlight": "true"}).json()

    assert found == []
    assert GameSession.objects.filter(highlight=True).count() == 1


# --- customise_session through a real token (the production path) -----------------------------


def token_for(api, username: str) -> str:
    response = api.post("/api/v1/auth/token", {"username": username, "password": "pass-word-123"}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["access"]


def test_a_token_issued_after_customise_session_is_taken_from_players_is_refused(api, make_session, host):
    session = make_session(host)
    url = f"/api/v1/sessions/{session.uid}"
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token_for(api, 'host')}")
    assert api.patch(url, {"name": "Friday league"}, format="json").status_code == 200

    default_group().permissions.remove(*default_group().permissions.filter(codename=PERM_CUSTOMISE))
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token_for(api, 'host')}")
    refused = api.patch(url, {"name": "Saturday league"}, format="json")
    allowed = api.patch(url, {"data": {"map": "dust"}}, format="json")  # not customisation

    assert (refused.status_code, refused.json()["code"]) == (403, "customise_forbidden")
    assert allowed.status_code == 200
    assert GameSession.objects.get(pk=session.pk).name == "Friday league"
