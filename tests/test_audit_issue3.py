"""Audit of issue 3 against the code: the behaviours the other test files left unshown.

`invited` by PUT and its refusals (and their place in the error order); what an invite's
expiry takes away (sight of a private session, in the list too); reservations: the TTL
setting, sight in the list, a reserved place refused to an invite; a throttled player joining
through an invite or a reservation; a team index out of range judged before the session's
state; 401 on every route of the issue; and events the player view must not react to.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from sessions_app.models import GameSession, Invite, InviteState, JoinPasswordFailure, Membership, Reservation
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.membership import session_join
from sessions_project.times import iso

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

STALE = '"stale-etag"'
NOBODY = "00000000-0000-4000-8000-000000000000"


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def version_of(session) -> int:
    return GameSession.objects.values_list("version", flat=True).get(pk=session.pk)


def listed(api, player) -> list[str]:
    response = api.as_(player).get("/api/v1/sessions")
    assert response.status_code == 200
    return [s["uid"] for s in response.json()]


# --- `invited` by PUT, and its refusals -------------------------------------------------------


def test_invited_by_put_sets_the_whole_list(api, host, member, outsider, make_session):
    session = make_session(host, invited=[member.uid])

    response = api.as_(host).put(url(session), {"version": 0, "invited": [str(outsider.uid)]}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["invited"] == [str(outsider.uid)]
    assert response.json()["version"] == 1
    assert dict(Invite.objects.values_list("player", "state")) == {
        member.pk: InviteState.REVOKED,
        outsider.pk: InviteState.PENDING,
    }


def test_an_empty_invited_list_revokes_every_pending_invite(api, host, member, outsider, make_session):
    session = make_session(host, invited=[member.uid, outsider.uid])

    response = api.as_(host).patch(url(session), {"invited": []}, format="json")

    assert response.status_code == 200
    assert response.json()["invited"] == []
    assert response.json()["version"] == 1
    assert set(Invite.objects.values_list("state", flat=True)) == {InviteState.REVOKED}


def test_invited_naming_a_member_is_409_and_changes_nothing(api, host, member, outsider, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = api.as_(host).patch(url(session), {"invited": [str(outsider.uid), str(member.uid)]}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "already_member")
    assert not Invite.objects.exists()
    assert version_of(session) == 1


def test_invited_by_a_member_who_is_not_the_host_is_403(api, host, member, outsider, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = api.as_(member).patch(url(session), {"invited": [str(outsider.uid)]}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")
    assert not Invite.objects.exists()


@pytest.mark.parametrize("precondition", ["if_match", "version"])
def test_invited_naming_an_unknown_player_is_400_before_412_and_409(api, host, member, make_session, precondition):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)  # version 1: version 0 is stale
    body = {"invited": [str(member.uid), NOBODY]}
    headers = {}
    if precondition == "if_match":
        headers["HTTP_IF_MATCH"] = STALE
    else:
        body["version"] = 0

    response = api.as_(host).patch(url(session), body, format="json", **headers)

    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "invited[1]"
    assert not Invite.objects.exists()


def test_on_create_an_unknown_invited_player_is_400_before_a_full_session_409(api, game_server):
    players = PlayerFactory.create_batch(3)

    response = api.as_(game_server).post(
        "/api/v1/sessions",
        {"users": [str(p.uid) for p in players], "numTeams": 1, "teamSize": 2, "invited": [NOBODY]},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "invited[0]"
    assert not GameSession.objects.exists()


# --- an invite's expiry takes away what it gave ------------------------------------------------


def test_an_expired_invite_no_longer_shows_a_private_session(api, host, member, make_session, clock):
    # Given a private session the member is invited to for a minute
    session = make_session(host, visibility="private")
    invite_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=60)
    )
    assert str(session.uid) in listed(api, member)
    assert api.get("/api/v1/sessions/count?visibility=private").json() == {"count": 1}
    assert api.get(url(session)).status_code == 200

    # When the minute passes (no job runs)
    clock.advance(seconds=61)

    # Then the session is hidden again everywhere, and joining it is 404
    assert str(session.uid) not in listed(api, member)
    assert api.get("/api/v1/sessions/count?visibility=private").json() == {"count": 0}
    assert api.get(url(session)).status_code == 404
    assert api.post(f"{url(session)}/join").status_code == 404
    assert Invite.objects.get().state == InviteState.PENDING  # nothing recorded it: time alone


def test_an_invite_declined_or_revoked_no_longer_shows_a_private_session(api, host, member, outsider, make_session):
    session = make_session(host, visibility="private", invited=[member.uid, outsider.uid])
    declined, revoked = Invite.objects.order_by("id")

    api.as_(member).post(f"/api/v1/invites/{declined.pk}/decline")
    api.as_(host).delete(f"/api/v1/invites/{revoked.pk}")

    assert api.as_(member).get(url(session)).status_code == 404
    assert api.as_(outsider).get(url(session)).status_code == 404
    assert str(session.uid) not in listed(api, outsider)


def test_accepting_when_the_last_place_is_reserved_for_another_is_409(api, host, member, outsider, make_session):
    session = make_session(host, num_teams=1, team_size=2)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
    reservation_create(session_id=session.pk, actor=host, player_uid=outsider.uid)

    response = api.as_(member).post(f"/api/v1/invites/{invite.pk}/accept")

    assert (response.status_code, response.json()["code"]) == (409, "session_full")
    assert Invite.objects.get().state == InviteState.PENDING
    assert not Membership.objects.filter(player=member).exists()


# --- reservations -----------------------------------------------------------------------------


def test_the_default_expiry_comes_from_the_reservation_ttl_setting(api, host, member, make_session, clock, settings):
    settings.RESERVATION_TTL = 42
    session = make_session(host)

    response = api.as_(host).post(f"{url(session)}/reservations", {"player": str(member.uid)}, format="json")

    assert response.status_code == 201
    assert response.json()["expiresAt"] == iso(clock.now + timedelta(seconds=42))
    assert Reservation.objects.get().expires_at == clock.now + timedelta(seconds=42)


def test_the_reservation_ttl_defaults_to_five_minutes():
    from sessions_project import settings as production

    assert production.RESERVATION_TTL == 300


def test_a_reservation_shows_a_private_session_in_the_list_until_it_expires(api, host, member, make_session, clock):
    session = make_session(host, visibility="private")
    reservation_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=30)
    )

    before = listed(api, member)
    counted = api.get("/api/v1/sessions/count").json()
    clock.advance(seconds=31)
    after = listed(api, member)

    assert str(session.uid) in before
    assert counted == {"count": 1}
    assert str(session.uid) not in after


def test_a_reservation_expiring_moves_neither_version_nor_etag(api, host, member, outsider, make_session, clock):
    session = make_session(host, num_teams=1, team_size=2)
    reservation_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=30)
    )
    before = api.as_(host).get(url(session))

    clock.advance(seconds=31)
    after = api.get(url(session), HTTP_IF_NONE_MATCH=before["ETag"])
    joined = api.as_(outsider).post(f"{url(session)}/join")

    assert after.status_code == 304
    assert joined.status_code == 200  # the place is free
    assert joined.json()["version"] == before.json()["version"] + 1


def test_a_reserved_player_joins_a_session_with_every_other_place_taken(api, host, member, make_session):
    # Two places: the host's and member's reserved one; a third player is refused, and
    # member, not naming a team, still gets in.
    session = make_session(host, num_teams=2, team_size=1, password="s3cret")
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)

    refused = api.as_(PlayerFactory()).post(f"{url(session)}/join", {"password": "s3cret"}, format="json")
    joined = api.as_(member).post(f"{url(session)}/join")

    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    assert joined.status_code == 200, joined.json()
    assert [t["players"] for t in joined.json()["teams"]] == [[str(host.uid)], [str(member.uid)]]
    assert not Reservation.objects.exists()


# --- a throttled player joining through an invite or a reservation -----------------------------


@pytest.mark.parametrize("way", ["invite_accept", "join_with_invite", "join_with_reservation"])
def test_a_throttled_player_still_joins_by_a_way_that_needs_no_password(api, host, member, make_session, clock, way):
    # Given member throttled on a password session by five wrong guesses
    session = make_session(host, password="s3cret")
    api.as_(member)
    for _ in range(5):
        assert api.post(f"{url(session)}/join", {"password": "guess"}, format="json").status_code == 403
    assert api.post(f"{url(session)}/join", {"password": "s3cret"}, format="json").status_code == 429

    # When the host lets member in without the password
    if way == "join_with_reservation":
        reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
        response = api.as_(member).post(f"{url(session)}/join")
    else:
        invite = invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
        if way == "invite_accept":
            response = api.as_(member).post(f"/api/v1/invites/{invite.pk}/accept")
        else:
            response = api.as_(member).post(f"{url(session)}/join")

    # Then it joins, the throttle notwithstanding, and its later repeated joins are not throttled
    assert response.status_code == 200, response.json()
    assert Membership.objects.filter(session=session, player=member).exists()
    again = api.as_(member).get(f"{url(session)}/join")
    assert again.status_code == 200
    assert JoinPasswordFailure.objects.filter(player=member).count() == 5


# --- teams: an index out of range is a malformed request ---------------------------------------


def test_a_team_out_of_range_is_400_before_a_full_session_409(api, host, member, make_session):
    session = make_session(host, num_teams=1, team_size=1)  # full with the host

    response = api.as_(member).post(f"{url(session)}/join", {"team": 3}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "team"


def test_a_team_out_of_range_is_400_before_a_not_open_409(api, host, member, make_session):
    session = make_session(host, num_teams=2, status="in_progress")

    response = api.as_(member).post(f"{url(session)}/join", {"team": 2}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "team"


def test_asking_for_a_team_in_a_session_without_teams_is_400(api, host, member, make_session):
    session = make_session(host)

    response = api.as_(member).post(f"{url(session)}/join", {"team": 0}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "team"
    assert not Membership.objects.filter(player=member).exists()


def test_a_member_moved_by_the_host_to_a_full_team_is_409(api, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=1)
    session_join(session_id=session.pk, actor=member)

    response = api.as_(host).post(f"{url(session)}/teams/0/join", {"player": str(member.uid)}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "team_full")
    assert Membership.objects.get(player=member).team.index == 1


# --- refusals of invites, reservations and kicks: 403 before 400 ------------------------------


@pytest.mark.parametrize("route", ["invites", "reservations", "kick"])
def test_a_non_host_member_is_403_even_with_a_malformed_body(api, host, member, make_session, route):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = api.as_(member).post(f"{url(session)}/{route}", {"player": "nope", "expiresAt": "soon"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")


# --- 401 on every route of the issue ------------------------------------------------------------

SOME = str(uuid.uuid4())
ROUTES = [
    ("post", f"/api/v1/sessions/{SOME}/invites"),
    ("get", f"/api/v1/sessions/{SOME}/invites"),
    ("post", f"/api/v1/sessions/{SOME}/reservations"),
    ("get", f"/api/v1/sessions/{SOME}/reservations"),
    ("delete", f"/api/v1/sessions/{SOME}/reservations/1"),
    ("post", f"/api/v1/sessions/{SOME}/teams/0/join"),
    ("post", f"/api/v1/sessions/{SOME}/kick"),
    ("post", "/api/v1/invites/1/accept"),
    ("post", "/api/v1/invites/1/decline"),
    ("delete", "/api/v1/invites/1"),
    ("get", "/api/v1/players/me/invites"),
    ("get", f"/api/v1/players/{SOME}/sessions"),
    ("get", "/api/v1/players/not-a-uuid/sessions"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_of_the_issue_answers_401_without_credentials(api, method, path):
    response = getattr(api, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


# --- the player view ignores what it does not show ---------------------------------------------


def test_the_player_view_ignores_another_players_reservation_and_its_expiry(api, member, host, make_session, clock):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    first = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions")

    reservation_create(
        session_id=session.pk, actor=host, player_uid=PlayerFactory().uid, expires_at=clock.now + timedelta(seconds=5)
    )
    during = api.get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])
    clock.advance(seconds=6)
    after = api.get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (during.status_code, after.status_code) == (304, 304)


def test_the_player_view_changes_when_the_player_is_kicked_from_a_reservation(api, member, host, make_session, clock):
    session = make_session(host)
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    first = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions")
    assert first.json()["sessions"]["default"]["reservedSessions"] == [str(session.uid)]
    clock.advance(seconds=5)

    kicked = api.as_(host).post(f"{url(session)}/kick", {"player": str(member.uid)}, format="json")
    second = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])

    assert kicked.status_code == 200
    assert second.status_code == 200
    assert second.json() == {"sessions": {}, "lastUpdatedTimestamp": iso(clock.now)}
