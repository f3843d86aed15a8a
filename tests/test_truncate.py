"""DELETE /sessions: it deletes exactly what GET /sessions/count counts with the same filters
(every session without one), answers {"deleted": n}, and keeps the players' views right."""

from __future__ import annotations

import uuid

import pytest

from sessions_app.models import (
    PERM_TRUNCATE,
    SCOPE_ANY,
    GameSession,
    Invite,
    Membership,
    PlayerSessionsStamp,
    Reservation,
)
from sessions_project.times import iso

from .conftest import grant
from .factories import PlayerFactory

LIST = "/api/v1/sessions"
COUNT = "/api/v1/sessions/count"


@pytest.fixture
def operator(db):
    """May truncate and sees every session (session:* and truncate_sessions)."""
    return grant(PlayerFactory(username="operator"), SCOPE_ANY, PERM_TRUNCATE)


@pytest.fixture
def sessions(game_server, host, member, make_session, clock):
    server = uuid.uuid4()
    made = {
        "a": make_session(game_server, host_uid=str(host.uid), users=[str(host.uid)], server_uid=server),
        "b": make_session(host, status="in_progress", visibility="private", type="ranked", workspace_id="ws-a"),
        "c": make_session(
            game_server, host_uid=None, users=[str(member.uid)], server_uid=server, workspace_id="ws-a", name="Friday"
        ),
        "d": make_session(member, highlight=True, workspace_id="ws-b", name="Friday league", idle_timeout=60),
    }
    clock.advance(seconds=61)  # "d" is past its idle deadline: it reads as closed
    return {**made, "server": server}


FILTERS = [
    "workspaceId=ws-a",
    "workspaceId=ws-b",
    "workspaceId=nowhere",
    "status=open",
    "status=in_progress",
    "status=closed",
    "visibility=private",
    "visibility=public",
    "hostUid={host}",
    "serverUid={server}",
    "user={member}",
    "type=ranked",
    "highlight=true",
    "highlight=false",
    "search=friday",
    "status=open&serverUid={server}&user={member}",
]


@pytest.mark.parametrize("query", FILTERS)
def test_truncate_deletes_exactly_what_count_counts(api, operator, host, member, sessions, query):
    query = query.format(host=host.uid, member=member.uid, server=sessions["server"])
    api.as_(operator)
    selected = {s["uid"] for s in api.get(f"{LIST}?{query}").json()}
    counted = api.get(f"{COUNT}?{query}").json()["count"]

    response = api.delete(f"{LIST}?{query}")

    assert response.status_code == 200
    assert response.json() == {"deleted": counted}
    assert len(selected) == counted
    every = {str(sessions[name].uid) for name in "abcd"}
    assert set(map(str, GameSession.objects.values_list("uid", flat=True))) == every - selected
    assert api.get(f"{COUNT}?{query}").json() == {"count": 0}


def test_truncating_one_workspace_leaves_the_others(api, operator, sessions):
    response = api.as_(operator).delete(f"{LIST}?workspaceId=ws-a")

    assert response.status_code == 200
    assert response.json() == {"deleted": 2}
    assert set(GameSession.objects.values_list("pk", flat=True)) == {sessions["a"].pk, sessions["d"].pk}
    # What hung on the deleted sessions went with them, and only that.
    assert set(Membership.objects.values_list("session", flat=True)) == {sessions["a"].pk, sessions["d"].pk}


def test_truncate_without_a_filter_still_deletes_everything(api, operator, sessions):
    response = api.as_(operator).delete(LIST)

    assert response.json() == {"deleted": 4}
    assert not GameSession.objects.exists()
    assert not Membership.objects.exists()


def test_truncate_never_deletes_what_the_caller_cannot_see(api, truncator, host, sessions):
    # truncate_sessions without session:*: the scope is the sessions it may see, as count's.
    counted = api.as_(truncator).get(COUNT).json()["count"]

    response = api.delete(LIST)

    assert response.json() == {"deleted": counted} == {"deleted": 3}
    assert list(GameSession.objects.values_list("pk", flat=True)) == [sessions["b"].pk]  # host's private one


@pytest.mark.parametrize("query", ["status=paused", "highlight=yes", "hostUid=nope", "user=not-a-uuid"])
def test_a_malformed_filter_deletes_nothing(api, operator, sessions, query):
    response = api.as_(operator).delete(f"{LIST}?{query}")

    assert response.status_code == 400
    assert GameSession.objects.count() == 4


def test_truncate_still_needs_its_permission_whatever_the_filter(api, game_server, sessions):
    response = api.as_(game_server).delete(f"{LIST}?workspaceId=ws-a")

    assert response.status_code == 403
    assert response.json()["code"] == "truncate_forbidden"
    assert GameSession.objects.count() == 4


def test_a_partial_truncate_updates_only_the_views_it_changes(
    api, operator, host, member, outsider, make_session, clock
):
    kept = make_session(host, workspace_id="ws-keep")
    gone = make_session(host, workspace_id="ws-gone")
    api.as_(host).post(f"/api/v1/sessions/{gone.uid}/invites", {"player": str(member.uid)}, format="json")
    api.as_(host).post(f"/api/v1/sessions/{kept.uid}/reservations", {"player": str(outsider.uid)}, format="json")
    stamps_before = dict(PlayerSessionsStamp.objects.values_list("player_uid", "changed_at"))
    clock.advance(seconds=5)

    response = api.as_(operator).delete(f"{LIST}?workspaceId=ws-gone")

    assert response.json() == {"deleted": 1}
    stamps = dict(PlayerSessionsStamp.objects.values_list("player_uid", "changed_at"))
    assert stamps[host.uid] == clock.now  # left the deleted session
    assert stamps[member.uid] == clock.now  # its invite went with it
    assert stamps[outsider.uid] == stamps_before[outsider.uid]  # the kept reservation is untouched
    assert Reservation.objects.filter(session=kept).count() == 1
    assert not Invite.objects.exists()
    view = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions").json()
    assert view == {"sessions": {}, "lastUpdatedTimestamp": iso(clock.now)}
