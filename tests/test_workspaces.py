"""Workspaces (seed 004's findSessions): `workspaceId` on a session, and the list and
count filtered by it."""

from __future__ import annotations

import pytest
from django.db import connection

from players_app.models import Player
from sessions_app.models import GameSession
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def uids(response) -> set[str]:
    return {s["uid"] for s in response.json()}


@pytest.fixture
def workspaces(host, make_session):
    """Sessions on two workspaces whose names share a prefix, and one on none."""
    return {
        "ws-1": [make_session(host, workspace_id="ws-1"), make_session(host, workspace_id="ws-1")],
        "ws-10": [make_session(host, workspace_id="ws-10")],
        "": [make_session(host)],
    }


def test_workspace_id_is_a_member_of_the_session(api, host):
    created = api.as_(host).post("/api/v1/sessions", {"workspaceId": "ws-42"}, format="json")
    plain = api.as_(host).post("/api/v1/sessions", {}, format="json")

    assert created.status_code == 201
    assert created.json()["workspaceId"] == "ws-42"
    assert plain.json()["workspaceId"] == ""
    assert GameSession.objects.get(uid=created.json()["uid"]).workspace_id == "ws-42"


def test_the_host_moves_a_session_to_another_workspace(api, host, make_session):
    session = make_session(host, workspace_id="ws-1")

    response = api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"workspaceId": "ws-2"}, format="json")

    assert response.status_code == 200
    assert (response.json()["workspaceId"], response.json()["version"]) == ("ws-2", session.version + 1)
    assert GameSession.objects.get(pk=session.pk).workspace_id == "ws-2"


def test_a_member_may_not_change_the_workspace(api, host, member, make_session):
    session = make_session(host, workspace_id="ws-1")
    session_join(session_id=session.pk, actor=member)

    response = api.as_(member).patch(f"/api/v1/sessions/{session.uid}", {"workspaceId": "ws-2"}, format="json")

    assert response.status_code == 403
    assert GameSession.objects.get(pk=session.pk).workspace_id == "ws-1"


@pytest.mark.parametrize("value", ["x" * 256, None, ["ws-1"], {"id": 1}])
def test_a_bad_workspace_id_is_400(api, host, value):
    response = api.as_(host).post("/api/v1/sessions", {"workspaceId": value}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "workspaceId"
    assert not GameSession.objects.exists()


def test_find_sessions_by_workspace_matches_exactly(api, outsider, workspaces):
    response = api.as_(outsider).get("/api/v1/sessions", {"workspaceId": "ws-1"})

    assert response.status_code == 200
    assert uids(response) == {str(s.uid) for s in workspaces["ws-1"]}
    assert all(s["workspaceId"] == "ws-1" for s in response.json())


def test_count_filters_by_workspace_the_same_way(api, outsider, workspaces):
    assert api.as_(outsider).get("/api/v1/sessions/count", {"workspaceId": "ws-1"}).json() == {"count": 2}
    assert api.get("/api/v1/sessions/count", {"workspaceId": "ws-10"}).json() == {"count": 1}
    assert api.get("/api/v1/sessions/count", {"workspaceId": "nowhere"}).json() == {"count": 0}


def test_an_empty_workspace_filter_filters_nothing(api, outsider, workspaces):
    assert api.as_(outsider).get("/api/v1/sessions/count", {"workspaceId": ""}).json() == {"count": 4}


def test_the_workspace_filter_keeps_private_sessions_private(api, host, outsider, make_session):
    public = make_session(host, workspace_id="ws-1")
    private = make_session(host, workspace_id="ws-1", visibility="private")

    as_outsider = api.as_(outsider).get("/api/v1/sessions", {"workspaceId": "ws-1"})
    outsider_count = api.get("/api/v1/sessions/count", {"workspaceId": "ws-1"}).json()
    as_host = api.as_(host).get("/api/v1/sessions", {"workspaceId": "ws-1"})

    assert uids(as_outsider) == {str(public.uid)}
    assert outsider_count == {"count": 1}
    assert uids(as_host) == {str(public.uid), str(private.uid)}


def test_the_workspace_filter_combines_with_the_effective_status(api, host, make_session, clock):
    live = make_session(host, workspace_id="ws-1", idle_timeout=0)
    closing = make_session(host, workspace_id="ws-1", idle_timeout=0)
    session_close(session_id=closing.pk, actor=host, close_after=60)
    clock.advance(seconds=61)  # `closing` is now closed by time, before any sweeper ran

    open_ones = api.as_(host).get("/api/v1/sessions", {"workspaceId": "ws-1", "status": "open"})
    closed_count = api.get("/api/v1/sessions/count", {"workspaceId": "ws-1", "status": "closed"}).json()

    assert uids(open_ones) == {str(live.uid)}
    assert closed_count == {"count": 1}


def test_sessions_sort_by_workspace(api, host, make_session):
    for workspace in ("b", "c", "a"):
        make_session(host, workspace_id=workspace)

    response = api.as_(host).get("/api/v1/sessions", {"sort": '{"workspaceId":"ASC"}'})

    assert [s["workspaceId"] for s in response.json()] == ["a", "b", "c"]


def test_find_sessions_by_workspace_query_count(api, host, make_session, django_assert_num_queries):
    players = PlayerFactory.create_batch(5)
    for index in range(6):
        session = make_session(
            host, workspace_id="ws-1", num_teams=2, team_size=5, invited=[str(players[3 + index % 2].uid)]
        )
        for player in players[:3]:
            session_join(session_id=session.pk, actor=player)
    api.as_(Player.objects.get(pk=host.pk))  # a fresh instance: no permissions cached yet

    # 1-2 the caller's permissions (user, then group permissions: visible_to asks session:*);
    # 3 the page of documents, members, teams and invites included (rendered columns).
    with django_assert_num_queries(3):
        response = api.get("/api/v1/sessions", {"workspaceId": "ws-1"})

    assert len(response.json()) == 6
    assert all(len(s["users"]) == 4 and len(s["invited"]) == 1 for s in response.json())


# --- the workspace column ---------------------------------------------------------------------


def test_workspace_id_is_an_indexed_column():
    """Sessions are found by workspace in every findSessions call: the column is indexed."""
    field = GameSession._meta.get_field("workspace_id")
    assert field.db_index
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, GameSession._meta.db_table)
    assert any(c["index"] and c["columns"] == ["workspace_id"] for c in constraints.values())
