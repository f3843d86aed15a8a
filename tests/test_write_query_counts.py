"""What the write endpoints cost in queries: join, leave, PATCH, PUT and create read the
session row once, under its lock, and write what changed; the members they show come from the
row's rendered columns and the answer from the written instance. Each count names its queries.

The callers are tokens (`as_token`), as in production: no permission lookups. SAVEPOINT and
RELEASE are the transaction of the service inside the test's own (in production: BEGIN and
COMMIT, which the connection sends without a query of Django's).
"""

from __future__ import annotations

import pytest
from django.db import connection

from sessions_app.models import GameSession, JoinPasswordFailure, Membership, Reservation
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.membership import session_join

from .conftest import as_token
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

SAVEPOINTS = 2  # SAVEPOINT and RELEASE SAVEPOINT around the service's transaction
# On PostgreSQL a write's UPDATE of the session row and the INSERT of its events are one
# statement (the UPDATE in a WITH: sessions_project.prepared.update_and_insert); the counts
# below name them apart, as SQLite runs them.
TOGETHER = 1 if connection.vendor == "postgresql" else 0


@pytest.fixture(autouse=True)
def _savepoints():
    assert connection.features.uses_savepoints  # SQLite and PostgreSQL alike


def url(session, action: str = "") -> str:
    return f"/api/v1/sessions/{session.uid}{action}"


def as_read(api, caller, session) -> dict:
    """The session as a GET answers it now."""
    return api.as_(caller).get(url(session)).json()


# --- join ---------------------------------------------------------------------------------------


def test_a_join_locks_the_row_inserts_the_member_and_updates_the_row(
    api, host, member, make_session, django_assert_num_queries
):
    session = make_session(host)
    caller = as_token(member)

    # 1 the session row, locked (with its host's uid; its members and active reservations are
    # read from the row); 2 INSERT the membership; 3 the caller's view stamp (upsert); 4 UPDATE
    # the session row (members, version, dates); 5 INSERT the event (member.joined)
    with django_assert_num_queries(5 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"))

    assert response.status_code == 200, response.json()
    assert response.json()["users"] == [str(host.uid), str(member.uid)]
    assert response.json() == as_read(api, caller, session)


def test_a_join_with_the_password_adds_only_the_throttle_read(
    api, host, member, make_session, django_assert_num_queries
):
    session = make_session(host, password="s3cret")
    caller = as_token(member)

    # 1 the locked row; 2 the session's recent wrong passwords (the throttle); 3 INSERT the
    # membership; 4 the view stamp; 5 UPDATE the session row; 6 INSERT the event (member.joined)
    with django_assert_num_queries(6 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"), {"password": "s3cret"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)


def test_a_wrong_password_is_recorded_though_the_join_is_refused(
    api, host, member, make_session, django_assert_num_queries
):
    session = make_session(host, password="s3cret")
    caller = as_token(member)

    # 1 the locked row; 2 the throttle read; 3 DELETE the session's failures older than the
    # window; 4 INSERT this failure (committed before the 403)
    with django_assert_num_queries(4 + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"), {"password": "wrong"}, format="json")

    assert response.status_code == 403
    assert JoinPasswordFailure.objects.filter(session=session, player=member).count() == 1


def test_a_join_on_a_reservation_deletes_it_too(api, host, member, make_session, django_assert_num_queries):
    session = make_session(host, num_teams=2, team_size=2)
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    caller = as_token(member)

    # 1 the locked row (its reservations_doc holds the caller's: no capacity check); 2 INSERT
    # the membership (its team's id by index inside the insert); 3 DELETE the reservation;
    # 4 the view stamp; 5 UPDATE the session row; 6 INSERT the event (member.joined)
    with django_assert_num_queries(6 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"))

    assert response.status_code == 200, response.json()
    assert not Reservation.objects.filter(session=session).exists()
    assert response.json() == as_read(api, caller, session)


def test_a_join_into_a_chosen_team_costs_what_a_plain_join_does(
    api, host, member, make_session, django_assert_num_queries
):
    session = make_session(host, num_teams=2, team_size=2)
    caller = as_token(member)

    # 1 the locked row (its reservations counted against capacity, team sizes from its
    # rendered teams); 2 INSERT the membership into team 1; 3 the view stamp; 4 UPDATE the
    # session row; 5 INSERT the event (member.joined)
    with django_assert_num_queries(5 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"), {"team": 1}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["teams"][1]["players"] == [str(member.uid)]
    assert Membership.objects.get(session=session, player=member).team.index == 1
    assert response.json() == as_read(api, caller, session)


def test_an_invited_join_accepts_the_invite(api, host, member, make_session, django_assert_num_queries):
    session = make_session(host, visibility="private", password="s3cret")
    invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
    caller = as_token(member)

    # 1 the locked row (visible: the rendered invites name the caller); 2 the invite, pending
    # and unexpired (no password then); 3 INSERT the membership; 4 UPDATE the invite to
    # accepted; 5 the view stamp; 6 UPDATE the session row; 7 INSERT the events (member.joined
    # and invite.accepted, one statement)
    with django_assert_num_queries(7 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/join"))

    assert response.status_code == 200, response.json()
    assert response.json()["invited"] == []
    assert response.json() == as_read(api, caller, session)


def test_a_members_repeated_join_only_reads_the_row(api, session, member, django_assert_num_queries):
    caller = as_token(member)

    with django_assert_num_queries(1 + SAVEPOINTS):  # the locked row: already a member
        response = api.as_(caller).post(url(session, "/join"))

    assert response.status_code == 200
    assert response.json() == as_read(api, caller, session)


# --- leave --------------------------------------------------------------------------------------


def test_a_leave_locks_the_row_deletes_the_member_and_updates_the_row(api, session, member, django_assert_num_queries):
    caller = as_token(member)

    # 1 the locked row; 2 DELETE the membership; 3 the leaver's view stamp; 4 UPDATE the row;
    # 5 INSERT the event (member.left)
    with django_assert_num_queries(5 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/leave"))

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, as_token(PlayerFactory()), session)


def test_a_hosts_leave_adds_the_successors_lookup(api, session, host, member, django_assert_num_queries):
    caller = as_token(host)

    # 1 the locked row; 2 DELETE the membership; 3 the earliest member left (id and uid);
    # 4 the view stamp; 5 UPDATE the row (its new host); 6 INSERT the events (member.left and
    # host.changed, one statement)
    with django_assert_num_queries(6 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/leave"))

    assert response.status_code == 200, response.json()
    assert response.json()["hostUid"] == str(member.uid)
    assert response.json() == as_read(api, caller, session)


def test_the_last_leave_closes_the_session(api, host, make_session, django_assert_num_queries):
    session = make_session(host)
    caller = as_token(host)

    # 1 the locked row; 2 DELETE the membership; 3-5 what the close takes out of the players'
    # views (members, invites, reservations); 6 the view stamps; 7 UPDATE the row (closed);
    # 8 INSERT the events (member.left and session.closed, one statement)
    with django_assert_num_queries(8 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).post(url(session, "/leave"))

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "closed"
    assert response.json() == as_read(api, caller, session)


# --- update -------------------------------------------------------------------------------------


def test_a_patch_locks_the_row_and_updates_it(api, session, host, django_assert_num_queries):
    caller = as_token(host)

    # 1 the locked row; 2 UPDATE it (no member, team or invite changed: nothing re-rendered);
    # 3 INSERT the event (session.updated)
    with django_assert_num_queries(3 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).patch(url(session), {"visibility": "private", "version": 1}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2
    assert response.json() == as_read(api, caller, session)


def test_a_patch_of_data_reads_back_what_the_database_stored(api, session, host, django_assert_num_queries):
    caller = as_token(host)

    # 1 the locked row; 2 UPDATE it; 3 INSERT the event (session.updated); 4 the row re-read
    # for the answer (jsonb normalises data)
    with django_assert_num_queries(4 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).patch(url(session), {"data": {"b": 1, "a": 2}, "version": 1}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)


def test_a_put_costs_what_a_patch_does(api, session, host, django_assert_num_queries):
    caller = as_token(host)

    # 1 the locked row; 2 UPDATE it; 3 INSERT the event (session.updated); 4 the row re-read
    # for the answer (data was written)
    with django_assert_num_queries(4 - TOGETHER + SAVEPOINTS):
        response = api.as_(caller).put(url(session), {"data": {"map": "dust"}, "version": 1}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)


# --- create -------------------------------------------------------------------------------------


def test_a_create_inserts_the_session_and_its_member(api, host, django_assert_num_queries):
    caller = as_token(host)

    # 1 the host's player row, locked (live-session quota); 2 its live sessions, counted;
    # 3 INSERT the session (its users, teams and invited rendered in memory); 4 INSERT the
    # membership; 5 the host's view stamp; 6 INSERT the event (session.created)
    with django_assert_num_queries(6 + SAVEPOINTS):
        response = api.as_(caller).post("/api/v1/sessions", {"visibility": "public"}, format="json")

    assert response.status_code == 201, response.json()
    created = GameSession.objects.get(uid=response.json()["uid"])
    assert response.json() == as_read(api, caller, created)


def test_a_create_with_data_and_teams_reads_back_what_the_database_stored(api, host, django_assert_num_queries):
    caller = as_token(host)
    body = {"numTeams": 2, "teamSize": 2, "data": {"map": "dust"}}

    # 1 the quota's lock; 2 its count; 3 INSERT the session; 4 INSERT its teams; 5 INSERT the
    # membership; 6 the view stamp; 7 INSERT the event (session.created); 8 the row re-read for
    # the answer (jsonb normalises JSON)
    with django_assert_num_queries(8 + SAVEPOINTS):
        response = api.as_(caller).post("/api/v1/sessions", body, format="json")

    assert response.status_code == 201, response.json()
    created = GameSession.objects.get(uid=response.json()["uid"])
    assert response.json() == as_read(api, caller, created)
    assert response.json()["teams"][0]["players"] == [str(host.uid)]


def test_a_join_after_the_service_join_of_another_keeps_the_joining_order(api, host, member, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    other = PlayerFactory()

    response = api.as_(as_token(other)).post(url(session, "/join"))

    assert response.json()["users"] == [str(host.uid), str(member.uid), str(other.uid)]
    assert GameSession.objects.get(pk=session.pk).users_doc == response.json()["users"]


# --- quick join and join by code ---------------------------------------------------------------


def test_a_quick_join_adds_the_choice_to_what_a_join_costs(api, host, member, make_session, django_assert_num_queries):
    session = make_session(host, data={"map": "harbor"})
    caller = as_token(member)
    lock = 1 if connection.vendor == "postgresql" else 0  # SQLite serialises writers itself

    # (PostgreSQL: the advisory lock of these filters); 1 the candidates, ranked, with whether
    # the caller is in each; then the join's own (its own savepoint): 2 the locked row;
    # 3 INSERT the membership; 4 the view stamp; 5 UPDATE the session row; 6 INSERT the event
    # (member.joined)
    with django_assert_num_queries(lock + 6 - TOGETHER + 2 * SAVEPOINTS):
        response = api.as_(caller).post(
            "/api/v1/sessions/quick-join", {"filters": {"data.map": "harbor"}}, format="json"
        )

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)


def test_a_quick_join_into_a_session_the_caller_is_in_reads_only_the_candidates(
    api, session, member, django_assert_num_queries
):
    caller = as_token(member)
    lock = 1 if connection.vendor == "postgresql" else 0

    # (PostgreSQL: the advisory lock); 1 the candidates: the caller's own comes first, and the
    # answer is built from that row
    with django_assert_num_queries(lock + 1 + SAVEPOINTS):
        response = api.as_(caller).post("/api/v1/sessions/quick-join", {}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)


def test_a_join_by_code_adds_the_throttle_and_the_lookup_to_what_a_join_costs(
    api, host, member, make_session, django_assert_num_queries
):
    session = make_session(host)
    caller = as_token(member)

    # 1 the caller's player row, locked (its guesses one at a time); 2 its recent wrong codes
    # (the throttle); 3 the live session with the code; then the join's own (its own
    # transaction): 4 the locked row; 5 INSERT the membership; 6 the view stamp; 7 UPDATE the
    # session row; 8 INSERT the event (member.joined)
    with django_assert_num_queries(8 - TOGETHER + 2 * SAVEPOINTS):
        response = api.as_(caller).post("/api/v1/sessions/join-by-code", {"code": session.join_code}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == as_read(api, caller, session)
