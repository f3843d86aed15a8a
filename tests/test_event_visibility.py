"""Reading the event log: GET /sessions/{uid}/events and GET /players/me/events.

Whoever may see a session sees its events, except the invite and reservation events of a
private session, which are its host's, the player's concerned and session:* accounts' only.
A deleted session's events stay readable by session:* accounts. Pages are keyset pages by id
(`after`, `limit`), oldest first, with the API's paging limits and error format."""

from __future__ import annotations

import re
import uuid

import pytest

from sessions_app.event_models import SessionEvent
from sessions_app.services import invites, membership, sessions

from .conftest import as_token
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def session_events(api, caller, session_uid, query: str = ""):
    return api.as_(caller).get(f"/api/v1/sessions/{session_uid}/events{query}")


def my_events(api, caller, query: str = ""):
    return api.as_(caller).get(f"/api/v1/players/me/events{query}")


def types(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [event["type"] for event in response.json()]


@pytest.fixture
def invitee(db):
    return PlayerFactory(username="invitee")


@pytest.fixture
def private(make_session, host, member, invitee):
    """A private session of host and member, with a pending invite for invitee and a
    reservation held for another player."""
    session = make_session(host, visibility="private")
    membership.session_join(session_id=session.pk, actor=member, via_invite=True)
    invites.invite_create(session_id=session.pk, actor=host, player_uid=invitee.uid)
    invites.reservation_create(session_id=session.pk, actor=host, player_uid=PlayerFactory().uid)
    return session


ALL = ["session.created", "member.joined", "invite.created", "reservation.created"]


# --- one session ---------------------------------------------------------------------------


def test_an_event_reads_as_the_api_writes_resources(api, host, session, member):
    response = session_events(api, host, session.uid)

    assert response.status_code == 200
    joined = response.json()[1]
    assert set(joined) == {"id", "type", "sessionUid", "version", "actorUid", "at", "data"}
    assert joined["type"] == "member.joined"
    assert joined["sessionUid"] == str(session.uid)
    assert joined["version"] == 1
    assert joined["actorUid"] == str(member.uid)
    assert ISO.match(joined["at"])
    assert joined["data"] == {"playerUid": str(member.uid), "team": None}


def test_a_public_sessions_events_are_seen_by_anyone(api, session, outsider):
    assert types(session_events(api, outsider, session.uid)) == ["session.created", "member.joined"]


def test_the_host_and_session_star_see_every_event_of_a_private_session(api, private, host, game_server):
    assert types(session_events(api, host, private.uid)) == ALL
    assert types(session_events(api, game_server, private.uid)) == ALL


def test_a_member_does_not_see_other_players_invites_and_reservations_of_a_private_session(api, private, member):
    assert types(session_events(api, member, private.uid)) == ["session.created", "member.joined"]


def test_an_invitee_sees_the_private_session_and_its_own_invite(api, private, invitee):
    assert types(session_events(api, invitee, private.uid)) == ["session.created", "member.joined", "invite.created"]


def test_an_outsider_gets_404_for_a_private_sessions_events(api, private, outsider):
    response = session_events(api, outsider, private.uid)

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_invites_of_a_public_session_are_seen_by_whoever_sees_it(api, session, host, outsider):
    invites.invite_create(session_id=session.pk, actor=host, player_uid=PlayerFactory().uid)

    assert types(session_events(api, outsider, session.uid))[-1] == "invite.created"


def test_a_deleted_sessions_events_stay_readable_by_session_star_only(api, session, host, game_server):
    sessions.session_delete(session_id=session.pk, actor=host)

    assert types(session_events(api, game_server, session.uid)) == [
        "session.created",
        "member.joined",
        "session.deleted",
    ]
    refused = session_events(api, host, session.uid)
    assert refused.status_code == 404
    assert refused.json()["code"] == "session_not_found"


def test_a_session_that_never_existed_is_404_even_for_session_star(api, game_server):
    response = session_events(api, game_server, uuid.uuid4())

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_a_malformed_uid_is_400(api, host):
    response = session_events(api, host, "not-a-uid")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_uuid"


def test_after_and_limit_page_through_the_events_oldest_first(api, session, host, member):
    membership.session_leave(session_id=session.pk, actor=member)
    everything = session_events(api, host, session.uid).json()
    assert [e["type"] for e in everything] == ["session.created", "member.joined", "member.left"]

    first = session_events(api, host, session.uid, "?limit=2").json()
    rest = session_events(api, host, session.uid, f"?after={first[-1]['id']}").json()

    assert first + rest == everything
    assert session_events(api, host, session.uid, f"?after={everything[-1]['id']}").json() == []


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("?limit=0", "limit", "out_of_range"),
        ("?limit=1001", "limit", "out_of_range"),
        ("?limit=many", "limit", "invalid"),
        ("?after=-1", "after", "out_of_range"),
        ("?after=1.5", "after", "invalid"),
        ("?skip=1", "skip", "unknown_parameter"),
    ],
)
def test_bad_paging_is_400_in_the_error_format(api, session, host, query, field, code):
    for response in (session_events(api, host, session.uid, query), my_events(api, host, query)):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("application/problem+json")
        body = response.json()
        assert body["errors"][0]["field"] == field
        assert body["errors"][0]["code"] == code


def test_limit_1000_and_an_empty_after_are_accepted(api, session, host):
    assert len(session_events(api, host, session.uid, "?limit=1000&after=").json()) == 2


def test_a_sessions_events_cost_two_queries(api, private, host, member, django_assert_num_queries):
    for _ in range(3):
        membership.session_leave(session_id=private.pk, actor=member)
        membership.session_join(session_id=private.pk, actor=member, via_invite=True)

    for caller in (as_token(host), as_token(member)):
        # 1 the session row (visibility: the member is in its rendered users); 2 the page of
        # its events the caller may see
        with django_assert_num_queries(2):
            response = api.as_(caller).get(f"/api/v1/sessions/{private.uid}/events")
        assert response.status_code == 200
        assert len(response.json()) >= 8


def test_a_deleted_sessions_events_cost_two_queries(api, session, host, game_server, django_assert_num_queries):
    sessions.session_delete(session_id=session.pk, actor=host)
    caller = as_token(game_server)

    # 1 the session row (none); 2 the page of its events (not empty: no existence check)
    with django_assert_num_queries(2):
        response = api.as_(caller).get(f"/api/v1/sessions/{session.uid}/events")
    assert len(response.json()) == 3


# --- the player's feed -------------------------------------------------------------------------


def test_the_feed_holds_the_events_of_the_callers_sessions(api, session, member, outsider):
    assert types(my_events(api, member)) == ["session.created", "member.joined"]
    assert types(my_events(api, outsider)) == []


def test_an_invitee_learns_of_its_invite_before_it_knows_the_session(api, private, invitee):
    feed = my_events(api, invitee).json()

    assert [e["type"] for e in feed] == ["invite.created"]
    assert feed[0]["sessionUid"] == str(private.uid)
    assert feed[0]["data"]["playerUid"] == str(invitee.uid)


def test_the_feed_leaves_out_other_players_invites_unless_the_caller_hosts(api, private, host, member):
    assert types(my_events(api, member)) == ["session.created", "member.joined"]
    assert types(my_events(api, host)) == ALL


def test_a_player_that_left_keeps_its_leave_but_not_what_came_after(api, session, host, member):
    membership.session_leave(session_id=session.pk, actor=member)
    sessions.session_update(session_id=session.pk, actor=host, values={"name": "after the leave"})

    # Its join and leave name it; the session's other events are no longer its concern.
    assert types(my_events(api, member)) == ["member.joined", "member.left"]


def test_the_feed_pages_by_after_and_limit(api, session, member):
    first = my_events(api, member, "?limit=1").json()
    rest = my_events(api, member, f"?after={first[0]['id']}").json()

    assert [e["type"] for e in first + rest] == ["session.created", "member.joined"]


def test_the_feed_costs_one_query(api, make_session, host, member, django_assert_num_queries):
    for _ in range(3):
        made = make_session(host)
        membership.session_join(session_id=made.pk, actor=member)
        invites.invite_create(session_id=make_session(host, visibility="private").pk, actor=host, player_uid=member.uid)

    caller = as_token(member)

    # 1 the page: events naming the caller, or of the sessions it is a member of or hosts
    with django_assert_num_queries(1):
        response = api.as_(caller).get("/api/v1/players/me/events")
    assert len(response.json()) == 9


def test_events_count_in_admin_through_the_services_only():
    # The log is written by the services alone: its admin offers no add, change or delete.
    from django.contrib import admin

    model_admin = admin.site._registry[SessionEvent]
    assert not model_admin.has_add_permission(None)
    assert not model_admin.has_change_permission(None)
    assert not model_admin.has_delete_permission(None)
