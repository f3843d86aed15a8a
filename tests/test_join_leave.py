"""Join and leave: only open sessions, passwords (body or header) and their throttle,
capacity, team placement, idempotent joins, host hand-over and closing on the last leave."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from sessions_app.models import GameSession, JoinPasswordFailure, Membership
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.join_passwords import check_join_password, hash_join_password
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def join_url(session) -> str:
    return f"/api/v1/sessions/{session.uid}/join"


def leave_url(session) -> str:
    return f"/api/v1/sessions/{session.uid}/leave"


def members(session) -> list[int]:
    return list(Membership.objects.filter(session=session).order_by("joined_at", "id").values_list("player", flat=True))


def version(session) -> int:
    return GameSession.objects.values_list("version", flat=True).get(pk=session.pk)


# --- join -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_joining_an_open_session_adds_the_player_and_bumps_the_version(api, host, member, make_session, method):
    session = make_session(host)

    response = getattr(api.as_(member), method)(join_url(session))

    assert response.status_code == 200, response.json()
    assert response.json()["users"] == [str(host.uid), str(member.uid)]
    assert response.json()["version"] == 1
    assert response["ETag"] == f'"{session.uid}-1"'
    assert members(session) == [host.pk, member.pk]


@pytest.mark.parametrize("status", ["in_progress", "closed", "closing"])
def test_only_an_open_session_can_be_joined(api, host, member, make_session, status):
    session = make_session(host)
    if status == "closing":
        api.as_(host).delete(f"/api/v1/sessions/{session.uid}?closeAfter=60")
    else:
        api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"status": status}, format="json")
    before = version(session)

    response = api.as_(member).post(join_url(session))

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "not_joinable"
    assert body["status"] == 409  # the problem's own status is never overwritten
    assert body["sessionStatus"] == status
    assert members(session) == [host.pk]
    assert version(session) == before


def test_a_repeated_join_answers_200_and_changes_nothing(api, host, member, make_session):
    session = make_session(host)
    api.as_(member).post(join_url(session))

    again = api.post(join_url(session))
    host_again = api.as_(host).get(join_url(session))

    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert host_again.status_code == 200
    assert host_again.json()["version"] == 1
    assert members(session) == [host.pk, member.pk]


def test_an_outsider_cannot_join_a_private_session_it_cannot_see(api, host, outsider, make_session):
    session = make_session(host, visibility="private")

    response = api.as_(outsider).post(join_url(session))

    assert response.status_code == 404
    assert members(session) == [host.pk]


def test_join_of_an_unknown_or_malformed_uid(api, member):
    api.as_(member)

    assert api.post("/api/v1/sessions/00000000-0000-0000-0000-000000000000/join").status_code == 404
    assert api.post("/api/v1/sessions/nope/join").status_code == 400


def test_a_join_body_must_be_an_object(api, host, member, make_session):
    session = make_session(host)

    response = api.as_(member).post(join_url(session), ["pw"], format="json")

    assert response.status_code == 400
    assert members(session) == [host.pk]


# --- passwords ------------------------------------------------------------------------------


@pytest.fixture
def locked(host, make_session):
    return make_session(host, password="open sesame")


def test_the_password_in_the_body_joins(api, member, locked):
    response = api.as_(member).post(join_url(locked), {"password": "open sesame"}, format="json")

    assert response.status_code == 200, response.json()
    assert str(member.uid) in response.json()["users"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_password_in_the_header_joins(api, member, locked, method):
    response = getattr(api.as_(member), method)(join_url(locked), HTTP_X_SESSION_PASSWORD="open sesame")

    assert response.status_code == 200, response.json()
    assert members(locked)[-1] == member.pk


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"data": {"password": "wrong"}, "format": "json"}, "wrong_password"),
        ({"HTTP_X_SESSION_PASSWORD": "wrong"}, "wrong_password"),
        ({}, "password_required"),
        ({"data": {"password": ""}, "format": "json"}, "password_required"),
    ],
    ids=["wrong-body", "wrong-header", "missing", "empty"],
)
def test_a_wrong_or_missing_password_is_403(api, member, locked, kwargs, code):
    response = api.as_(member).post(join_url(locked), **kwargs)

    assert response.status_code == 403
    assert response.json()["code"] == code
    assert str(member.pk) not in map(str, members(locked))
    assert version(locked) == 0
    assert JoinPasswordFailure.objects.filter(session=locked, player=member).count() == 1


def test_a_member_rejoining_needs_no_password(api, host, locked):
    response = api.as_(host).post(join_url(locked))

    assert response.status_code == 200
    assert response.json()["version"] == 0


def test_a_password_check_costs_a_few_milliseconds(settings):
    # Production's rounds, not the test settings' single one: a join must stay cheap.
    from sessions_project import settings as production

    settings.JOIN_PASSWORD_ITERATIONS = production.JOIN_PASSWORD_ITERATIONS
    encoded = hash_join_password("open sesame")

    started = time.perf_counter()
    for _ in range(5):
        assert check_join_password("open sesame", encoded)
    per_check = (time.perf_counter() - started) / 5

    assert per_check < 0.05, f"{per_check * 1000:.1f} ms per join password check"


def fail(api, session, times: int, clock=None, step: float = 1) -> None:
    for _ in range(times):
        response = api.post(join_url(session), {"password": "guess"}, format="json")
        assert response.status_code == 403
        if clock is not None:
            clock.advance(seconds=step)


def test_five_failures_throttle_every_password_join_for_the_minute(api, member, locked, clock):
    start = clock.now
    api.as_(member)
    fail(api, locked, 4, clock)
    missing = api.post(join_url(locked))  # a missing password counts as a failure too
    assert missing.status_code == 403
    clock.advance(seconds=1)  # now start + 5 s

    right = api.post(join_url(locked), {"password": "open sesame"}, format="json")
    by_header = api.get(join_url(locked), HTTP_X_SESSION_PASSWORD="open sesame")
    wrong = api.post(join_url(locked), {"password": "guess"}, format="json")

    for response in (right, by_header, wrong):
        assert response.status_code == 429
        assert response.json()["code"] == "join_throttled"
        # Until the minute that began with the first of the five failures has passed.
        assert response["Retry-After"] == "55"
    assert members(locked) == [locked.host_id]
    # Throttled attempts are not failures: they do not prolong the throttle.
    assert JoinPasswordFailure.objects.filter(session=locked, player=member).count() == 5

    clock.now = start + timedelta(seconds=59.9)
    assert api.post(join_url(locked), {"password": "open sesame"}, format="json").status_code == 429
    clock.now = start + timedelta(seconds=60)
    joined = api.post(join_url(locked), {"password": "open sesame"}, format="json")

    assert joined.status_code == 200, joined.json()
    assert members(locked) == [locked.host_id, member.pk]


def test_failures_spread_over_more_than_a_minute_do_not_throttle(api, member, locked, clock):
    api.as_(member)
    fail(api, locked, 5, clock, step=15)  # at 0, 15, 30, 45, 60 s: never five within 60 s

    response = api.post(join_url(locked), {"password": "open sesame"}, format="json")

    assert response.status_code == 200


def test_the_throttle_is_per_player_and_per_session(api, host, member, outsider, locked, make_session, clock):
    other = make_session(host, password="open sesame")
    api.as_(member)
    fail(api, locked, 5)

    same_player_other_session = api.post(join_url(other), {"password": "open sesame"}, format="json")
    other_player = api.as_(outsider).post(join_url(locked), {"password": "open sesame"}, format="json")

    assert same_player_other_session.status_code == 200
    assert other_player.status_code == 200


def test_the_throttle_does_not_stop_a_join_that_needs_no_password(api, host, member, make_session, clock):
    open_session = make_session(host)
    locked = make_session(host, password="pw")
    api.as_(member)
    fail(api, locked, 5)

    response = api.post(join_url(open_session))

    assert response.status_code == 200


def test_the_throttle_outlives_the_process_memory(api, member, locked, clock):
    # Failures live in the database (several workers serve the API), so a fresh client and
    # fresh caches change nothing.
    from django.core.cache import cache

    api.as_(member)
    fail(api, locked, 5)
    cache.clear()
    api.logout()

    response = api.as_(PlayerFactory._meta.model.objects.get(pk=member.pk)).post(
        join_url(locked), {"password": "open sesame"}, format="json"
    )

    assert response.status_code == 429


# --- the throttle across all players of a session ------------------------------------------


def guess(api, session, player, password="guess"):
    return api.as_(player).post(join_url(session), {"password": password}, format="json")


def test_failures_from_many_players_throttle_the_session_for_everyone(api, locked, clock):
    # Six fresh accounts, five guesses each: the session answers twenty, then throttles all.
    start = clock.now
    players = PlayerFactory.create_batch(6)
    statuses = []
    for player in players:
        for _ in range(5):
            statuses.append(guess(api, locked, player).status_code)
            clock.advance(seconds=1)

    assert statuses == [403] * 20 + [429] * 10
    assert JoinPasswordFailure.objects.filter(session=locked).count() == 20

    newcomer = PlayerFactory()
    right = guess(api, locked, newcomer, "open sesame")
    by_header = api.as_(newcomer).get(join_url(locked), HTTP_X_SESSION_PASSWORD="open sesame")
    for response in (right, by_header):
        assert response.status_code == 429
        assert response.json()["code"] == "join_throttled"
        # Until the window that began with the first of the twenty failures has passed.
        assert response["Retry-After"] == str(60 - 30)
    assert members(locked) == [locked.host_id]

    clock.now = start + timedelta(seconds=60)  # the first failure leaves the window
    joined = guess(api, locked, newcomer, "open sesame")

    assert joined.status_code == 200, joined.json()
    assert members(locked) == [locked.host_id, newcomer.pk]


def test_the_session_limit_is_a_setting(api, locked, settings, clock):
    settings.JOIN_PASSWORD_SESSION_MAX_FAILURES = 3
    players = PlayerFactory.create_batch(4)

    statuses = [guess(api, locked, p).status_code for p in players]

    assert statuses == [403, 403, 403, 429]


def test_the_session_throttle_spares_members_invitees_and_reservation_holders(
    api, host, member, game_server, locked, clock
):
    session_join(session_id=locked.pk, actor=member, password="open sesame")
    invitee, holder = PlayerFactory.create_batch(2)
    invite = invite_create(session_id=locked.pk, actor=host, player_uid=invitee.uid)
    reservation_create(session_id=locked.pk, actor=game_server, player_uid=holder.uid)
    for player in PlayerFactory.create_batch(4):
        for _ in range(5):
            guess(api, locked, player)
    assert guess(api, locked, PlayerFactory(), "open sesame").status_code == 429

    rejoin = guess(api, locked, member)
    accepted = api.as_(invitee).post(f"/api/v1/invites/{invite.pk}/accept")
    reserved = api.as_(holder).post(join_url(locked))

    assert rejoin.status_code == 200
    assert accepted.status_code == 200
    assert reserved.status_code == 200
    assert set(members(locked)) == {host.pk, member.pk, invitee.pk, holder.pk}


def test_the_session_throttle_leaves_other_sessions_alone(api, host, locked, make_session, clock):
    other = make_session(host, password="open sesame")
    for player in PlayerFactory.create_batch(4):
        for _ in range(5):
            guess(api, locked, player)

    response = guess(api, other, PlayerFactory(), "open sesame")

    assert response.status_code == 200


def test_a_session_throttled_for_everyone_answers_429_even_when_full(api, host, make_session, clock):
    full = make_session(host, password="open sesame", num_teams=1, team_size=1)
    for player in PlayerFactory.create_batch(4):
        for _ in range(5):
            assert guess(api, full, player).status_code == 403  # wrong passwords are judged first

    right = guess(api, full, PlayerFactory(), "open sesame")

    assert (right.status_code, right.json()["code"]) == (429, "join_throttled")


def test_a_session_that_is_not_open_answers_409_before_the_session_throttle(api, host, locked, clock):
    for player in PlayerFactory.create_batch(4):
        for _ in range(5):
            guess(api, locked, player)
    session_update(session_id=locked.pk, actor=host, values={"status": "in_progress"})

    response = guess(api, locked, PlayerFactory())

    assert (response.status_code, response.json()["code"]) == (409, "not_joinable")


# --- capacity and teams ---------------------------------------------------------------------


def test_a_full_session_is_409(api, host, member, outsider, make_session):
    session = make_session(host, num_teams=1, team_size=2)
    api.as_(member).post(join_url(session))

    response = api.as_(outsider).post(join_url(session))

    assert response.status_code == 409
    assert response.json()["code"] == "session_full"
    assert members(session) == [host.pk, member.pk]
    assert version(session) == 1


def test_no_limit_without_both_numbers(api, host, make_session):
    teams_no_size = make_session(host, num_teams=2, team_size=0)
    size_no_teams = make_session(host, num_teams=0, team_size=1)

    for _ in range(3):
        player = PlayerFactory()
        assert api.as_(player).post(join_url(teams_no_size)).status_code == 200
        assert api.post(join_url(size_no_teams)).status_code == 200


def test_joins_fill_the_smallest_team_lowest_index_first(api, host, make_session):
    session = make_session(host, num_teams=3, team_size=2)
    players = [PlayerFactory() for _ in range(5)]

    for player in players:
        assert api.as_(player).post(join_url(session)).status_code == 200

    teams = api.get(f"/api/v1/sessions/{session.uid}").json()["teams"]
    expected = [[host, players[2]], [players[0], players[3]], [players[1], players[4]]]
    assert [t["players"] for t in teams] == [[str(p.uid) for p in team] for team in expected]
    assert [t["index"] for t in teams] == [0, 1, 2]


def test_a_join_refills_the_team_a_leaver_left(api, host, member, outsider, make_session):
    session = make_session(host, num_teams=2)
    api.as_(member).post(join_url(session))  # team 1
    api.post(leave_url(session))
    third = PlayerFactory()
    api.as_(third).post(join_url(session))  # team 1 again: the smallest

    response = api.as_(outsider).post(join_url(session))  # both have one: lowest index

    assert [t["players"] for t in response.json()["teams"]] == [
        [str(host.uid), str(outsider.uid)],
        [str(third.uid)],
    ]


# --- leave ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_leaving_removes_the_player_from_users_and_its_team(api, host, member, make_session, method):
    session = make_session(host, num_teams=2)
    api.as_(member).post(join_url(session))

    response = getattr(api, method)(leave_url(session))

    assert response.status_code == 200
    assert response.json()["users"] == [str(host.uid)]
    assert [t["players"] for t in response.json()["teams"]] == [[str(host.uid)], []]
    assert response.json()["version"] == 2
    assert members(session) == [host.pk]


def test_a_non_member_leaving_is_409(api, host, outsider, make_session):
    session = make_session(host)

    response = api.as_(outsider).post(leave_url(session))

    assert response.status_code == 409
    assert response.json()["code"] == "not_member"
    assert version(session) == 0


def test_the_host_leaving_hands_over_to_the_earliest_remaining_member(api, host, make_session, clock):
    session = make_session(host)
    first, second = PlayerFactory(), PlayerFactory()
    clock.advance(seconds=1)
    api.as_(second).post(join_url(session))  # joins before first...
    clock.advance(seconds=1)
    api.as_(first).post(join_url(session))

    response = api.as_(host).post(leave_url(session))

    assert response.json()["hostUid"] == str(second.uid)
    assert response.json()["status"] == "open"
    assert GameSession.objects.get(pk=session.pk).host == second


def test_hand_over_among_members_who_joined_at_the_same_instant_follows_join_order(api, host, make_session, clock):
    session = make_session(host)
    first, second = PlayerFactory(), PlayerFactory()
    api.as_(first).post(join_url(session))
    api.as_(second).post(join_url(session))

    response = api.as_(host).post(leave_url(session))

    assert response.json()["hostUid"] == str(first.uid)


def test_the_last_member_of_a_hosted_session_leaving_closes_it_keeping_the_host(api, host, make_session):
    session = make_session(host)

    response = api.as_(host).post(leave_url(session))

    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    assert response.json()["hostUid"] == str(host.uid)
    assert response.json()["users"] == []
    assert response.json()["version"] == 1
    assert response.json()["closedAt"] is not None
    stored = GameSession.objects.get(pk=session.pk)
    assert stored.status == "closed"
    assert stored.host == host


def test_a_closed_session_cannot_be_left_or_joined(api, host, member, make_session):
    session = make_session(host)
    api.as_(host).post(leave_url(session))

    assert api.post(leave_url(session)).status_code == 409
    assert api.as_(member).post(join_url(session)).status_code == 409


def test_a_system_session_stays_open_when_its_last_member_leaves(api, game_server, member, make_session):
    session = make_session(game_server, host_uid=None, users=[str(member.uid)])

    response = api.as_(member).post(leave_url(session))

    assert response.status_code == 200
    assert response.json()["status"] == "open"
    assert response.json()["hostUid"] is None
    assert response.json()["users"] == []
    rejoin = api.post(join_url(session))
    assert rejoin.status_code == 200


def test_every_join_and_leave_moves_the_version_by_exactly_one(api, host, make_session):
    session = make_session(host)
    players = [PlayerFactory() for _ in range(3)]

    versions = []
    for player in players:
        versions.append(api.as_(player).post(join_url(session)).json()["version"])
    for player in players:
        versions.append(api.as_(player).post(leave_url(session)).json()["version"])

    assert versions == [1, 2, 3, 4, 5, 6]


# --- the password before capacity; which joins the throttle counts and refuses ----------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def failures(session, player) -> int:
    return JoinPasswordFailure.objects.filter(session=session, player=player).count()


@pytest.fixture
def locked_full(host, make_session):
    """A password session of one place, which the host holds."""
    return make_session(host, password="open sesame", num_teams=1, team_size=1)


def test_a_wrong_password_on_a_full_session_is_403_not_409(api, member, locked_full):
    response = api.as_(member).post(f"{url(locked_full)}/join", {"password": "guess"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "wrong_password")
    assert failures(locked_full, member) == 1


def test_the_right_password_on_a_full_session_is_409(api, member, locked_full):
    response = api.as_(member).post(f"{url(locked_full)}/join", {"password": "open sesame"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "session_full")
    assert failures(locked_full, member) == 0


def test_while_throttled_a_full_session_answers_429_whatever_the_password(api, member, locked_full, clock):
    # 429 comes last in the order, but a throttled join must not learn whether its password
    # was right: a right one on a full session would otherwise answer 409 and a wrong one 429.
    api.as_(member)
    for _ in range(5):
        assert api.post(f"{url(locked_full)}/join", {"password": "guess"}, format="json").status_code == 403

    right = api.post(f"{url(locked_full)}/join", {"password": "open sesame"}, format="json")
    wrong = api.post(f"{url(locked_full)}/join", {"password": "guess"}, format="json")

    assert (right.status_code, wrong.status_code) == (429, 429)
    assert right.json()["code"] == wrong.json()["code"] == "join_throttled"
    assert right["Retry-After"] == wrong["Retry-After"]
    assert right.json()["detail"] == wrong.json()["detail"]


def test_a_join_that_needs_no_password_records_no_failure(api, host, member, make_session):
    open_session = make_session(host)
    locked = make_session(host, password="open sesame")
    session_join(session_id=locked.pk, actor=member, password="open sesame")

    # A member re-joining with a wrong password, and anyone joining a session without one.
    rejoin = api.as_(member).post(f"{url(locked)}/join", {"password": "guess"}, format="json")
    joined = api.post(f"{url(open_session)}/join", {"password": "guess"}, format="json")

    assert (rejoin.status_code, joined.status_code) == (200, 200)
    assert not JoinPasswordFailure.objects.exists()
    assert Membership.objects.filter(player=member).count() == 2


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
