"""Per-player quotas: live sessions hosted at once (QUOTA_LIVE_SESSIONS_PER_HOST, 20) and
pending invites per session (QUOTA_PENDING_INVITES_PER_SESSION, 100). Past them a player gets
409 `quota_exceeded` and nothing is stored; session:* accounts are exempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessions_app.models import GameSession, Invite, InviteState, Membership
from sessions_app.services.invites import invite_create, invite_decline
from sessions_app.services.membership import session_join
from sessions_project.times import iso

from .conftest import version_of
from .factories import ChartFactory, PlayerFactory

LIST = "/api/v1/sessions"


def url(session) -> str:
    return f"{LIST}/{session.uid}"


def create(api, player, **body):
    return api.as_(player).post(LIST, body, format="json")


def hosted(player) -> int:
    return GameSession.objects.filter(host=player).count()


def assert_quota_exceeded(response) -> None:
    assert response.status_code == 409, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "quota_exceeded"


# --- live sessions hosted at once -------------------------------------------------------------


def test_a_player_hosts_at_most_twenty_live_sessions(api, host):
    for _ in range(20):
        assert create(api, host).status_code == 201

    refused = create(api, host, numTeams=2, teamSize=2)

    assert_quota_exceeded(refused)
    assert hosted(host) == 20
    assert Membership.objects.filter(player=host).count() == 20


def test_the_limit_is_a_setting_and_zero_lifts_it(api, host, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 2
    assert [create(api, host).status_code for _ in range(3)] == [201, 201, 409]

    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0

    assert create(api, host).status_code == 201


def test_every_live_status_counts_and_a_closed_session_frees_its_place(api, host, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 3
    open_one = create(api, host).json()
    create(api, host, status="in_progress")
    closing = create(api, host).json()
    api.delete(f"{LIST}/{closing['uid']}?closeAfter=600")  # closing still counts
    assert_quota_exceeded(create(api, host))

    api.delete(f"{LIST}/{open_one['uid']}?closeAfter=0")

    assert create(api, host).status_code == 201


def test_a_session_past_its_deadline_no_longer_counts(api, host, settings, clock):
    # Closed as of now, before any sweeper records it.
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 2
    create(api, host, idleTimeout=60)
    create(api, host)
    assert_quota_exceeded(create(api, host))

    clock.advance(seconds=61)

    assert create(api, host).status_code == 201


def test_sessions_a_game_server_made_for_the_player_count(api, host, game_server, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 2
    for _ in range(2):
        made = create(api, game_server, hostUid=str(host.uid), users=[str(host.uid)])
        assert made.status_code == 201  # session:* is never refused, even past the quota

    assert_quota_exceeded(create(api, host))


def test_session_star_accounts_are_exempt(api, game_server, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 2

    statuses = [create(api, game_server).status_code for _ in range(4)]

    assert statuses == [201] * 4


def test_the_quota_comes_after_the_body_is_validated(api, host, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 1
    create(api, host)

    response = create(api, host, numTeams=-1)

    assert response.status_code == 400


def test_a_score_import_is_not_refused_by_the_quota(api, host, settings):
    # Imported sessions are closed from the start: they are never live.
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 1
    create(api, host)
    chart = ChartFactory()
    when = datetime(2025, 6, 1, 12, tzinfo=UTC)

    response = api.post(
        "/api/v1/scores/import",
        {"scores": [{"clientId": "run-1", "chart": chart.pk, "value": 1, "timeAchieved": iso(when)}]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert GameSession.objects.filter(host=host, is_imported=True).count() == 1


# --- handing the host over to a player at its quota ------------------------------------------


@pytest.fixture
def full_member(member, make_session, settings):
    """`member` hosting as many live sessions as the quota (2) allows."""
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 2
    for _ in range(2):
        make_session(member)
    return member


def test_the_host_may_not_hand_a_live_session_to_a_player_at_its_quota(api, host, full_member, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=full_member)
    before = version_of(session)

    response = api.as_(host).patch(url(session), {"hostUid": str(full_member.uid)}, format="json")

    assert_quota_exceeded(response)
    session.refresh_from_db()
    assert (session.host_id, session.version) == (host.pk, before)
    assert hosted(full_member) == 2


def test_the_host_may_hand_over_a_session_it_closes_in_the_same_update(api, host, full_member, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=full_member)

    response = api.as_(host).patch(url(session), {"hostUid": str(full_member.uid), "status": "closed"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["hostUid"] == str(full_member.uid)


def test_session_star_may_hand_a_session_to_a_player_at_its_quota(api, host, game_server, full_member, make_session):
    session = make_session(host)

    response = api.as_(game_server).patch(url(session), {"hostUid": str(full_member.uid)}, format="json")

    assert response.status_code == 200
    assert hosted(full_member) == 3


def test_a_leaving_host_hands_over_even_to_a_player_at_its_quota(api, host, full_member, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=full_member)

    response = api.as_(host).post(f"{url(session)}/leave")

    assert response.status_code == 200
    assert response.json()["hostUid"] == str(full_member.uid)
    assert hosted(full_member) == 3


# --- pending invites per session --------------------------------------------------------------


def invite(api, actor, session, player):
    return api.as_(actor).post(f"{url(session)}/invites", {"player": str(player.uid)}, format="json")


def test_a_session_holds_at_most_a_hundred_pending_invites(api, host, make_session):
    players = PlayerFactory.create_batch(101)
    session = make_session(host, invited=[p.uid for p in players[:100]])
    before = version_of(session)

    response = invite(api, host, session, players[100])

    assert_quota_exceeded(response)
    assert Invite.objects.filter(session=session, state=InviteState.PENDING).count() == 100
    assert not Invite.objects.filter(player=players[100]).exists()
    assert version_of(session) == before


def test_the_invite_limit_is_a_setting(api, host, make_session, settings):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 2
    session = make_session(host)
    players = PlayerFactory.create_batch(3)

    statuses = [invite(api, host, session, p).status_code for p in players]

    assert statuses == [201, 201, 409]


def test_answered_and_expired_invites_free_their_place(api, host, make_session, settings, clock):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 2
    session = make_session(host)
    first, second, third, fourth = PlayerFactory.create_batch(4)
    declined = invite_create(session_id=session.pk, actor=host, player_uid=first.uid)
    invite_create(
        session_id=session.pk, actor=host, player_uid=second.uid, expires_at=clock.now + timedelta(seconds=30)
    )
    assert_quota_exceeded(invite(api, host, session, third))

    invite_decline(invite_id=declined.pk, actor=first)
    assert invite(api, host, session, third).status_code == 201
    clock.advance(seconds=31)

    assert invite(api, host, session, fourth).status_code == 201


def test_too_many_invited_on_create_is_409_and_creates_nothing(api, host, settings):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 2
    players = PlayerFactory.create_batch(3)

    response = create(api, host, invited=[str(p.uid) for p in players])

    assert_quota_exceeded(response)
    assert not GameSession.objects.exists()
    assert not Invite.objects.exists()


def test_invited_on_update_counts_the_list_that_stays_pending(api, host, make_session, settings):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 2
    a, b, c = PlayerFactory.create_batch(3)
    session = make_session(host, invited=[a.uid, b.uid])

    too_many = api.as_(host).patch(url(session), {"invited": [str(a.uid), str(b.uid), str(c.uid)]}, format="json")
    assert_quota_exceeded(too_many)
    assert set(Invite.objects.filter(state=InviteState.PENDING).values_list("player", flat=True)) == {a.pk, b.pk}
    assert version_of(session) == 0

    # Replacing one invitee by another keeps two pending: allowed.
    swapped = api.as_(host).patch(url(session), {"invited": [str(a.uid), str(c.uid)]}, format="json")

    assert swapped.status_code == 200, swapped.json()
    assert set(swapped.json()["invited"]) == {str(a.uid), str(c.uid)}


def test_session_star_may_invite_past_the_limit(api, game_server, make_session, settings):
    settings.QUOTA_PENDING_INVITES_PER_SESSION = 1
    session = make_session(game_server)
    players = PlayerFactory.create_batch(3)

    statuses = [invite(api, game_server, session, p).status_code for p in players]
    patched = api.patch(url(session), {"invited": [str(p.uid) for p in PlayerFactory.create_batch(3)]}, format="json")

    assert statuses == [201, 201, 201]
    assert patched.status_code == 200
