"""Invites end to end: sending, accepting, declining, revoking, expiry, `invited` on create and
update, a player's own list, and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions_app.models import GameSession, Invite, InviteState, Membership
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join, session_leave
from sessions_project.times import iso

from .conftest import version_of
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def invite(api, actor, session, player, **body):
    return api.as_(actor).post(
        f"/api/v1/sessions/{session.uid}/invites", {"player": str(player.uid), **body}, format="json"
    )


# --- sending ----------------------------------------------------------------------------------


def test_host_invites_a_player_and_the_session_lists_it(api, host, member, make_session, clock):
    session = make_session(host, visibility="private")

    response = invite(api, host, session, member)

    assert response.status_code == 201, response.json()
    row = Invite.objects.get()
    assert response.json() == {
        "id": row.pk,
        "session": str(session.uid),
        "player": str(member.uid),
        "invitingPlayer": str(host.uid),
        "state": "pending",
        "dateCreated": iso(clock.now),
        "expiresAt": None,
    }
    assert row.state == InviteState.PENDING
    assert row.expires_at is None
    document = api.as_(host).get(f"/api/v1/sessions/{session.uid}").json()
    assert document["invited"] == [str(member.uid)]
    assert document["version"] == 1  # one write, one version


def test_invite_with_expiry_echoes_it(api, host, member, make_session, clock):
    session = make_session(host)
    expires = clock.now + timedelta(minutes=10)

    response = invite(api, host, session, member, expiresAt=iso(expires))

    assert response.status_code == 201
    assert response.json()["expiresAt"] == iso(expires)
    assert Invite.objects.get().expires_at == expires.replace(microsecond=expires.microsecond // 1000 * 1000)


def test_a_session_star_account_may_invite_into_anyones_session(api, host, member, game_server, make_session):
    session = make_session(host)
    response = invite(api, game_server, session, member)
    assert response.status_code == 201
    assert response.json()["invitingPlayer"] == str(game_server.uid)


def test_the_invited_player_may_read_a_private_session(api, host, member, outsider, make_session):
    session = make_session(host, visibility="private")
    assert api.as_(member).get(f"/api/v1/sessions/{session.uid}").status_code == 404

    invite(api, host, session, member)

    assert api.as_(member).get(f"/api/v1/sessions/{session.uid}").status_code == 200
    assert api.as_(outsider).get(f"/api/v1/sessions/{session.uid}").status_code == 404


def test_invite_refusals(api, host, member, outsider, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    before = version_of(session)

    unknown = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/invites", {"player": "00000000-0000-4000-8000-000000000000"}, format="json"
    )
    to_member = invite(api, host, session, member)
    by_member = invite(api, member, session, outsider)
    malformed = api.as_(host).post(f"/api/v1/sessions/{session.uid}/invites", {"player": "nope"}, format="json")
    no_body = api.as_(host).post(f"/api/v1/sessions/{session.uid}/invites", [], format="json")

    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_player")
    assert unknown.json()["errors"][0]["field"] == "player"
    assert (to_member.status_code, to_member.json()["code"]) == (409, "already_member")
    assert (by_member.status_code, by_member.json()["code"]) == (403, "not_host")
    assert (malformed.status_code, malformed.json()["errors"][0]["field"]) == (400, "player")
    assert (no_body.status_code, no_body.json()["code"]) == (400, "not_an_object")
    assert unknown["Content-Type"] == "application/problem+json"
    assert not Invite.objects.exists()
    assert version_of(session) == before


def test_a_second_pending_invite_is_refused(api, host, member, make_session):
    session = make_session(host)
    assert invite(api, host, session, member).status_code == 201

    again = invite(api, host, session, member)

    assert (again.status_code, again.json()["code"]) == (409, "already_invited")
    assert Invite.objects.count() == 1


def test_after_an_invite_expires_the_player_may_be_invited_again(api, host, member, make_session, clock):
    session = make_session(host)
    invite(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=30)))
    clock.advance(seconds=31)

    again = invite(api, host, session, member)

    assert again.status_code == 201
    states = list(Invite.objects.order_by("id").values_list("state", flat=True))
    assert states == [InviteState.EXPIRED, InviteState.PENDING]


def test_expires_at_in_the_past_is_400_before_any_409(api, host, member, make_session, clock):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = invite(api, host, session, member, expiresAt=iso(clock.now - timedelta(seconds=1)))

    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "expiresAt")


def test_an_outsider_gets_404_for_a_private_session_before_403(api, host, member, outsider, make_session):
    session = make_session(host, visibility="private")
    response = invite(api, outsider, session, member)
    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")


def test_no_invite_into_a_closed_session(api, host, member, make_session):
    session = make_session(host)
    session_close(session_id=session.pk, actor=host, close_after=0)
    response = invite(api, host, session, member)
    assert (response.status_code, response.json()["code"]) == (409, "session_closed")


# --- accepting --------------------------------------------------------------------------------


def test_accept_joins_without_the_password(api, host, member, make_session):
    session = make_session(host, visibility="private", password="s3cret", num_teams=2, team_size=2)
    invite_id = invite(api, host, session, member).json()["id"]
    before = version_of(session)

    response = api.as_(member).post(f"/api/v1/invites/{invite_id}/accept")

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "accepted"
    document = api.as_(member).get(f"/api/v1/sessions/{session.uid}").json()
    assert document["users"] == [str(host.uid), str(member.uid)]
    assert document["invited"] == []
    assert document["teams"][1]["players"] == [str(member.uid)]
    assert document["version"] == before + 1
    assert Invite.objects.get().state == InviteState.ACCEPTED


def test_accept_into_a_full_session_is_409_and_leaves_the_invite_pending(api, host, member, make_session):
    session = make_session(host, num_teams=1, team_size=1)
    invite_id = invite(api, host, session, member).json()["id"]
    before = version_of(session)

    response = api.as_(member).post(f"/api/v1/invites/{invite_id}/accept")

    assert (response.status_code, response.json()["code"]) == (409, "session_full")
    assert Invite.objects.get().state == InviteState.PENDING
    assert not Membership.objects.filter(player=member).exists()
    assert version_of(session) == before


def test_accept_into_a_session_that_is_not_open_is_409(api, host, member, make_session):
    session = make_session(host, status="in_progress")
    invite_id = invite(api, host, session, member).json()["id"]

    response = api.as_(member).post(f"/api/v1/invites/{invite_id}/accept")

    assert (response.status_code, response.json()["code"]) == (409, "not_joinable")
    assert Invite.objects.get().state == InviteState.PENDING


def test_accept_after_expiry_is_409_and_the_invite_reads_expired(api, host, member, make_session, clock):
    session = make_session(host)
    invite_id = invite(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=60))).json()["id"]
    clock.advance(seconds=61)

    response = api.as_(member).post(f"/api/v1/invites/{invite_id}/accept")

    assert (response.status_code, response.json()["code"], response.json()["state"]) == (
        409,
        "invite_not_pending",
        "expired",
    )
    assert Invite.objects.get().state == InviteState.PENDING  # the row is stale; the API is not
    assert api.as_(member).get("/api/v1/players/me/invites").json()[0]["state"] == "expired"


def test_an_invite_expiring_is_not_a_change_of_the_session(api, host, member, make_session, clock):
    session = make_session(host)
    invite(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=60)))
    first = api.as_(host).get(f"/api/v1/sessions/{session.uid}")
    assert first.json()["invited"] == [str(member.uid)]

    clock.advance(seconds=61)
    later = api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    assert later.json()["invited"] == []
    assert later.json()["version"] == first.json()["version"]
    assert later["ETag"] == first["ETag"]


def test_only_the_invited_player_answers(api, host, member, outsider, make_session):
    session = make_session(host)
    invite_id = invite(api, host, session, member).json()["id"]

    by_host = api.as_(host).post(f"/api/v1/invites/{invite_id}/accept")
    by_outsider = api.as_(outsider).post(f"/api/v1/invites/{invite_id}/decline")

    assert (by_host.status_code, by_host.json()["code"]) == (403, "not_invited_player")
    assert (by_outsider.status_code, by_outsider.json()["code"]) == (404, "invite_not_found")
    assert Invite.objects.get().state == InviteState.PENDING


def test_invite_ids_that_are_malformed_or_unknown(api, member):
    malformed = api.as_(member).post("/api/v1/invites/abc/accept")
    unknown = api.as_(member).post("/api/v1/invites/999999/accept")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_id")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "invite_not_found")


def test_joining_with_a_pending_invite_needs_no_password_and_accepts_it(api, host, member, make_session):
    session = make_session(host, password="s3cret")
    invite(api, host, session, member)

    response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join", {}, format="json")

    assert response.status_code == 200, response.json()
    assert Invite.objects.get().state == InviteState.ACCEPTED


# --- declining and revoking -------------------------------------------------------------------


def test_decline(api, host, member, make_session):
    session = make_session(host)
    invite_id = invite(api, host, session, member).json()["id"]
    before = version_of(session)

    response = api.as_(member).post(f"/api/v1/invites/{invite_id}/decline")

    assert response.status_code == 200
    assert response.json()["state"] == "declined"
    assert Invite.objects.get().state == InviteState.DECLINED
    document = api.as_(host).get(f"/api/v1/sessions/{session.uid}").json()
    assert document["invited"] == []
    assert document["version"] == before + 1
    again = api.as_(member).post(f"/api/v1/invites/{invite_id}/accept")
    assert (again.status_code, again.json()["code"], again.json()["state"]) == (409, "invite_not_pending", "declined")


def test_revoke_by_the_host(api, host, member, make_session):
    session = make_session(host)
    invite_id = invite(api, host, session, member).json()["id"]
    before = version_of(session)

    response = api.as_(host).delete(f"/api/v1/invites/{invite_id}")

    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    assert version_of(session) == before + 1
    assert GameSession.objects.get(pk=session.pk).invites_doc == []
    again = api.as_(host).delete(f"/api/v1/invites/{invite_id}")
    assert (again.status_code, again.json()["code"]) == (409, "invite_not_pending")


def test_only_the_current_host_revokes(api, host, member, outsider, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    invite_id = invite(api, host, session, outsider).json()["id"]
    session_leave(session_id=session.pk, actor=host)  # the host hands over to member

    by_former_host = api.as_(host).delete(f"/api/v1/invites/{invite_id}")
    by_invitee = api.as_(outsider).delete(f"/api/v1/invites/{invite_id}")
    by_new_host = api.as_(member).delete(f"/api/v1/invites/{invite_id}")

    assert (by_former_host.status_code, by_former_host.json()["code"]) == (403, "not_host")
    assert (by_invitee.status_code, by_invitee.json()["code"]) == (403, "not_host")
    assert by_new_host.status_code == 200


# --- `invited` on create and update -----------------------------------------------------------


def test_invited_on_create_invites_each_player(api, host, member, outsider):
    response = api.as_(host).post("/api/v1/sessions", {"invited": [str(member.uid), str(outsider.uid)]}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["invited"] == [str(member.uid), str(outsider.uid)]
    assert response.json()["version"] == 0
    assert set(Invite.objects.values_list("player", "state")) == {
        (member.pk, InviteState.PENDING),
        (outsider.pk, InviteState.PENDING),
    }


def test_invited_on_update_sets_the_whole_list(api, host, member, outsider, make_session):
    session = make_session(host, invited=[member.uid])
    newcomer = PlayerFactory()

    response = api.as_(host).patch(
        f"/api/v1/sessions/{session.uid}", {"invited": [str(outsider.uid), str(newcomer.uid)]}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["invited"] == [str(outsider.uid), str(newcomer.uid)]
    assert response.json()["version"] == 1  # one update, one version, however many invites changed
    states = dict(Invite.objects.values_list("player", "state"))
    assert states == {member.pk: "revoked", outsider.pk: "pending", newcomer.pk: "pending"}


def test_the_same_invited_list_changes_nothing(api, host, member, make_session):
    session = make_session(host, invited=[member.uid])

    response = api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"invited": [str(member.uid)]}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 0
    assert Invite.objects.count() == 1


def test_invited_naming_an_unknown_player_is_400(api, host, make_session):
    session = make_session(host)
    response = api.as_(host).patch(
        f"/api/v1/sessions/{session.uid}", {"invited": ["00000000-0000-4000-8000-000000000000"]}, format="json"
    )
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "invited[0]")


# --- listing ----------------------------------------------------------------------------------


def test_a_player_lists_its_own_invites_newest_first(api, host, member, outsider, make_session, clock):
    first = make_session(host)
    clock.advance(seconds=1)
    second = make_session(host)
    invite(api, host, first, member)
    clock.advance(seconds=1)
    invite(api, host, second, member)
    invite(api, host, second, outsider)

    response = api.as_(member).get("/api/v1/players/me/invites")

    assert response.status_code == 200
    assert [i["session"] for i in response.json()] == [str(second.uid), str(first.uid)]
    assert {i["player"] for i in response.json()} == {str(member.uid)}


def test_my_invites_filter_by_state_as_shown(api, host, member, make_session, clock):
    sessions = [make_session(host) for _ in range(3)]
    invite(api, host, sessions[0], member)
    invite(api, host, sessions[1], member, expiresAt=iso(clock.now + timedelta(seconds=5)))
    declined = invite(api, host, sessions[2], member).json()["id"]
    api.as_(member).post(f"/api/v1/invites/{declined}/decline")
    clock.advance(seconds=6)

    def sessions_in(state):
        response = api.as_(member).get(f"/api/v1/players/me/invites?state={state}")
        assert response.status_code == 200
        return [i["session"] for i in response.json()]

    assert sessions_in("pending") == [str(sessions[0].uid)]
    assert sessions_in("expired") == [str(sessions[1].uid)]
    assert sessions_in("declined") == [str(sessions[2].uid)]
    bad = api.as_(member).get("/api/v1/players/me/invites?state=lost")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "state")


def test_my_invites_cost_one_query_however_many(api, host, member, make_session, django_assert_num_queries):
    for _ in range(15):
        invite(api, host, make_session(host), member)
    api.as_(member)
    # 1: the invites with their session, player and inviting player (select_related).
    with django_assert_num_queries(1):
        response = api.get("/api/v1/players/me/invites")
    assert len(response.json()) == 15


def test_the_host_lists_the_sessions_invites(api, host, member, outsider, make_session, django_assert_num_queries):
    session = make_session(host)
    for _ in range(5):
        invite(api, host, session, PlayerFactory())
    api.as_(host)
    # 1: the session (visibility), 2: its invites with their references.
    with django_assert_num_queries(2):
        response = api.get(f"/api/v1/sessions/{session.uid}/invites")
    assert response.status_code == 200
    assert len(response.json()) == 5
    refused = api.as_(outsider).get(f"/api/v1/sessions/{session.uid}/invites")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_host")


# --- `invited` by PUT and PATCH: the whole list, and its refusals in order --------------------


STALE = '"stale-etag"'


NOBODY = "00000000-0000-4000-8000-000000000000"


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def listed(api, player) -> list[str]:
    response = api.as_(player).get("/api/v1/sessions")
    assert response.status_code == 200
    return [s["uid"] for s in response.json()]


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


# --- an invite's expiry, decline or revocation takes away what it gave ------------------------


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
