"""Team play: joining a chosen team, switching and being moved, kicks, and resizing teams."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions_app.models import GameSession, Invite, InviteState, Membership, Reservation, Team
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join
from sessions_project.times import iso

from .conftest import version_of
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def teams_of(session) -> list[list[str]]:
    return [t["players"] for t in GameSession.objects.get(pk=session.pk).teams_doc]


def uids(*players) -> list[str]:
    return [str(p.uid) for p in players]


# --- joining a team ---------------------------------------------------------------------------


def test_join_asks_for_a_team(api, host, member, make_session):
    session = make_session(host, num_teams=3, team_size=2)
    response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join", {"team": 2}, format="json")
    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host), [], uids(member)]
    assert response.json()["teams"][2] == {"index": 2, "name": "Team 3", "players": uids(member)}


def test_join_into_a_full_team_is_409(api, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=1)
    response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join", {"team": 0}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "team_full")
    assert not Membership.objects.filter(player=member).exists()


def test_join_into_a_team_that_does_not_exist_is_400(api, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)
    response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join", {"team": 5}, format="json")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "team")


# --- switching and moving ---------------------------------------------------------------------


@pytest.fixture
def two_teams(host, member, make_session):
    """host in team 0, member in team 1, teams of two."""
    session = make_session(host, num_teams=2, team_size=2)
    session_join(session_id=session.pk, actor=member)
    assert teams_of(session) == [uids(host), uids(member)]
    return session


def test_a_member_switches_team(api, host, member, two_teams):
    before = version_of(two_teams)

    response = api.as_(member).post(f"/api/v1/sessions/{two_teams.uid}/teams/0/join")

    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host, member), []]
    assert response.json()["version"] == before + 1
    assert response["ETag"] == f'"{two_teams.uid}-{before + 1}"'
    assert Membership.objects.get(player=member).team.index == 0


def test_switching_to_ones_own_team_changes_nothing(api, member, two_teams):
    before = version_of(two_teams)
    response = api.as_(member).post(f"/api/v1/sessions/{two_teams.uid}/teams/1/join", {}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == before


def test_switching_into_a_full_team_is_409(api, host, member, two_teams):
    session_join(session_id=two_teams.pk, actor=PlayerFactory(), team=0)
    before = version_of(two_teams)
    response = api.as_(member).post(f"/api/v1/sessions/{two_teams.uid}/teams/0/join")
    assert (response.status_code, response.json()["code"]) == (409, "team_full")
    assert version_of(two_teams) == before


def test_the_host_moves_another_member(api, host, member, two_teams):
    response = api.as_(host).post(
        f"/api/v1/sessions/{two_teams.uid}/teams/0/join", {"player": str(member.uid)}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host, member), []]


def test_a_game_server_moves_a_member(api, host, member, game_server, two_teams):
    response = api.as_(game_server).post(
        f"/api/v1/sessions/{two_teams.uid}/teams/1/join", {"player": str(host.uid)}, format="json"
    )
    assert response.status_code == 200
    assert teams_of(two_teams) == [[], uids(host, member)]  # a team lists its players in joining order


def test_team_move_refusals(api, host, member, outsider, two_teams):
    url = f"/api/v1/sessions/{two_teams.uid}/teams"

    by_member = api.as_(member).post(f"{url}/1/join", {"player": str(host.uid)}, format="json")
    garbage_by_member = api.as_(member).post(f"{url}/1/join", {"player": "nope"}, format="json")
    garbage_by_host = api.as_(host).post(f"{url}/1/join", {"player": "nope"}, format="json")
    non_member = api.as_(host).post(f"{url}/1/join", {"player": str(outsider.uid)}, format="json")
    self_non_member = api.as_(outsider).post(f"{url}/1/join")
    no_such_team = api.as_(member).post(f"{url}/2/join")
    malformed_index = api.as_(member).post(f"{url}/first/join")

    assert (by_member.status_code, by_member.json()["code"]) == (403, "not_host")
    assert (garbage_by_member.status_code, garbage_by_member.json()["code"]) == (403, "not_host")
    assert (garbage_by_host.status_code, garbage_by_host.json()["errors"][0]["field"]) == (400, "player")
    assert (non_member.status_code, non_member.json()["code"]) == (409, "not_member")
    assert (self_non_member.status_code, self_non_member.json()["code"]) == (409, "not_member")
    assert (no_such_team.status_code, no_such_team.json()["code"]) == (404, "team_not_found")
    assert (malformed_index.status_code, malformed_index.json()["code"]) == (400, "invalid_id")
    assert teams_of(two_teams) == [uids(host), uids(member)]


def test_no_team_moves_in_a_closed_session(api, host, member, two_teams):
    session_close(session_id=two_teams.pk, actor=host, close_after=0)
    response = api.as_(member).post(f"/api/v1/sessions/{two_teams.uid}/teams/0/join")
    assert (response.status_code, response.json()["code"]) == (409, "session_closed")


# --- kicks ------------------------------------------------------------------------------------


def kick(api, actor, session, player):
    return api.as_(actor).post(f"/api/v1/sessions/{session.uid}/kick", {"player": str(player.uid)}, format="json")


def test_kicking_a_member_removes_it_from_users_and_its_team(api, host, member, two_teams):
    before = version_of(two_teams)

    response = kick(api, host, two_teams, member)

    assert response.status_code == 200, response.json()
    assert response.json()["users"] == uids(host)
    assert [t["players"] for t in response.json()["teams"]] == [uids(host), []]
    assert response.json()["version"] == before + 1
    assert not Membership.objects.filter(player=member).exists()


def test_kicking_removes_reservation_and_invite_alike_in_one_version(api, host, outsider, make_session):
    session = make_session(host)
    invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    reservation_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    before = version_of(session)

    response = kick(api, host, session, outsider)

    assert response.status_code == 200
    assert response.json()["invited"] == []
    assert response.json()["version"] == before + 1
    assert not Reservation.objects.exists()
    assert Invite.objects.get().state == InviteState.REVOKED


def test_kicking_only_a_reservation_does_not_move_the_version(api, host, outsider, make_session):
    session = make_session(host)
    reservation_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    before = version_of(session)

    response = kick(api, host, session, outsider)

    assert response.status_code == 200
    assert response.json()["version"] == before
    assert not Reservation.objects.exists()


def test_a_game_server_kicks_the_host_and_the_host_is_handed_over(api, host, member, game_server, two_teams):
    response = kick(api, game_server, two_teams, host)
    assert response.status_code == 200
    assert response.json()["hostUid"] == str(member.uid)


def test_kick_refusals(api, host, member, outsider, two_teams, clock):
    expired_only = PlayerFactory()
    reservation_create(
        session_id=two_teams.pk, actor=host, player_uid=expired_only.uid, expires_at=clock.now + timedelta(seconds=5)
    )
    clock.advance(seconds=6)
    before = version_of(two_teams)

    self_kick = kick(api, host, two_teams, host)
    nobody = kick(api, host, two_teams, outsider)
    expired = kick(api, host, two_teams, expired_only)
    by_member = kick(api, member, two_teams, host)
    unknown = api.as_(host).post(
        f"/api/v1/sessions/{two_teams.uid}/kick", {"player": "00000000-0000-4000-8000-000000000000"}, format="json"
    )
    no_player = api.as_(host).post(f"/api/v1/sessions/{two_teams.uid}/kick", {}, format="json")

    assert (self_kick.status_code, self_kick.json()["code"]) == (409, "kick_self")
    assert (nobody.status_code, nobody.json()["code"]) == (409, "nothing_to_kick")
    assert (expired.status_code, expired.json()["code"]) == (409, "nothing_to_kick")
    assert (by_member.status_code, by_member.json()["code"]) == (403, "not_host")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_player")
    assert (no_player.status_code, no_player.json()["errors"][0]["field"]) == (400, "player")
    assert version_of(two_teams) == before
    assert Membership.objects.filter(session=two_teams).count() == 2


def test_a_kicked_player_loses_sight_of_a_private_session(api, host, member, make_session):
    session = make_session(host, visibility="private")
    session_join(session_id=session.pk, actor=member)
    kick(api, host, session, member)
    assert api.as_(member).get(f"/api/v1/sessions/{session.uid}").status_code == 404


# --- resizing ---------------------------------------------------------------------------------


def patch(api, actor, session, **body):
    return api.as_(actor).patch(f"/api/v1/sessions/{session.uid}", body, format="json")


def test_adding_a_team(api, host, member, two_teams):
    before = version_of(two_teams)
    response = patch(api, host, two_teams, numTeams=3)
    assert response.status_code == 200, response.json()
    assert response.json()["teams"] == [
        {"index": 0, "name": "Team 1", "players": uids(host)},
        {"index": 1, "name": "Team 2", "players": uids(member)},
        {"index": 2, "name": "Team 3", "players": []},
    ]
    assert response.json()["version"] == before + 1
    assert Team.objects.filter(session=two_teams).count() == 3


def test_removing_a_team_moves_its_players_to_the_smallest_teams(api, host, make_session):
    # Teams of three: [host, a], [b, c], [d]. Dropping team 2 sends d to team 0 (two players,
    # lower index than team 1 at the same size).
    session = make_session(host, num_teams=3, team_size=3)
    a, b, c, d = PlayerFactory.create_batch(4)
    for player, team in ((a, 0), (b, 1), (c, 1), (d, 2)):
        session_join(session_id=session.pk, actor=player, team=team)

    response = patch(api, host, session, numTeams=2)

    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host, a, d), uids(b, c)]
    assert Team.objects.filter(session=session).count() == 2


def test_shrinking_teams_keeps_earliest_players_and_moves_the_rest(api, host, make_session):
    # Teams of three: [host, a, b], [c]. With teams of two, b (the latest joiner of team 0)
    # moves to team 1; host and a stay. A team lists its players in joining order.
    session = make_session(host, num_teams=2, team_size=3)
    a, b, c = PlayerFactory.create_batch(3)
    for player, team in ((a, 0), (b, 0), (c, 1)):
        session_join(session_id=session.pk, actor=player, team=team)

    response = patch(api, host, session, teamSize=2)

    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host, a), uids(b, c)]
    assert Membership.objects.get(player=b).team.index == 1


def test_resizing_that_would_not_fit_members_and_reservations_is_409(api, host, member, two_teams):
    reservation_create(session_id=two_teams.pk, actor=host, player_uid=PlayerFactory().uid)
    before = version_of(two_teams)

    # 2 members + 1 reservation: 1 team of 2 is too small, 3 teams of 1 is enough.
    too_small = patch(api, host, two_teams, numTeams=1)
    fits = patch(api, host, two_teams, numTeams=3, teamSize=1)

    assert (too_small.status_code, too_small.json()["code"]) == (409, "teams_do_not_fit")
    assert fits.status_code == 200, fits.json()
    assert fits.json()["version"] == before + 1
    assert [t["players"] for t in fits.json()["teams"]] == [uids(host), uids(member), []]


def test_an_expired_reservation_does_not_block_a_resize(api, host, member, two_teams, clock):
    reservation_create(
        session_id=two_teams.pk, actor=host, player_uid=PlayerFactory().uid, expires_at=clock.now + timedelta(seconds=5)
    )
    clock.advance(seconds=6)
    response = patch(api, host, two_teams, numTeams=1)
    assert response.status_code == 200, response.json()
    assert [t["players"] for t in response.json()["teams"]] == [uids(host, member)]


def test_no_teams_leaves_players_teamless(api, host, member, two_teams):
    response = patch(api, host, two_teams, numTeams=0)
    assert response.status_code == 200
    assert response.json()["teams"] == []
    assert response.json()["users"] == uids(host, member)
    assert not Membership.objects.filter(team__isnull=False).exists()


def test_a_resize_that_changes_nothing_keeps_the_version(api, host, two_teams):
    before = version_of(two_teams)
    response = patch(api, host, two_teams, numTeams=2, teamSize=2)
    assert response.json()["version"] == before


def test_expired_invite_is_not_kicked_and_is_not_in_the_session(api, host, outsider, make_session, clock):
    session = make_session(host)
    response = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/invites",
        {"player": str(outsider.uid), "expiresAt": iso(clock.now + timedelta(seconds=5))},
        format="json",
    )
    assert response.status_code == 201
    clock.advance(seconds=6)
    refused = kick(api, host, session, outsider)
    assert (refused.status_code, refused.json()["code"]) == (409, "nothing_to_kick")


@pytest.mark.parametrize("body", ["null", "[]", '"0"'])
def test_a_team_join_whose_body_is_not_an_object_is_400(api, member, two_teams, body):
    before = version_of(two_teams)

    response = api.as_(member).post(
        f"/api/v1/sessions/{two_teams.uid}/teams/0/join", body, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "not_an_object"
    assert version_of(two_teams) == before
    assert Membership.objects.get(player=member).team.index == 1


# --- a team out of range is a malformed request; host-only routes refuse before reading the body ---


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


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


@pytest.mark.parametrize("route", ["invites", "reservations", "kick"])
def test_a_non_host_member_inviting_reserving_or_kicking_is_403_even_with_a_malformed_body(
    api, host, member, make_session, route
):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = api.as_(member).post(f"{url(session)}/{route}", {"player": "nope", "expiresAt": "soon"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")
