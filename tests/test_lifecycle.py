"""Session lifecycle: the transition table, closing with a grace period, time-driven
closes that read as closed everywhere before any sweeper ran, idle expiry and heartbeats.

Time is the `clock` fixture: `timezone.now()` is frozen and moved by hand, never slept.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction

from sessions_app.models import GameSession, Invite, InviteState, Membership, Reservation, Score, SessionStatus, Team
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import TRANSITIONS, check_transition, close_due_sessions, session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update
from sessions_project.errors import Conflict
from sessions_project.times import iso

from .conftest import row
from .factories import PlayerFactory, ScoreFactory

pytestmark = pytest.mark.django_db


def url(session, suffix: str = "") -> str:
    return f"/api/v1/sessions/{session.uid}{suffix}"


def given(make_session, host, status: str, **values) -> GameSession:
    """A session of `host` brought to `status` through the services, as the API would."""
    session = make_session(host, **values)
    if status == "in_progress":
        session_update(session_id=session.pk, actor=host, values={"status": "in_progress"})
    elif status == "closing":
        session_close(session_id=session.pk, actor=host, close_after=600)
    elif status == "closed":
        session_close(session_id=session.pk, actor=host, close_after=0)
    return row(session)


def system_session(make_session, game_server, *players, **values) -> GameSession:
    """A session without a host (seed 001's system session) holding `players`."""
    return make_session(game_server, host_uid=None, users=[str(p.uid) for p in players], **values)


# --- transitions by update (PUT/PATCH) ------------------------------------------------------


@pytest.mark.parametrize("who", ["host", "game_server"])
@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("open", "in_progress"),
        ("in_progress", "open"),
        ("open", "closed"),
        ("in_progress", "closed"),
        ("closing", "closed"),
    ],
)
def test_update_makes_each_allowed_transition(api, request, host, make_session, clock, start, target, who):
    session = given(make_session, host, start)
    clock.advance(seconds=5)

    response = api.as_(request.getfixturevalue(who)).patch(url(session), {"status": target}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == target
    assert body["version"] == session.version + 1
    assert body["closedAt"] == (iso(clock.now) if target == "closed" else None)
    assert row(session).status == target


def test_put_with_version_makes_a_transition(api, host, make_session):
    session = given(make_session, host, "open")

    response = api.as_(host).put(url(session), {"status": "in_progress", "version": session.version}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "in_progress"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("open", "closing"),
        ("in_progress", "closing"),
        ("closing", "closing"),  # even on a session already closing
        ("closing", "open"),
        ("closing", "in_progress"),
        ("closed", "open"),
        ("closed", "in_progress"),
        ("closed", "closing"),
    ],
)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_refuses_an_invalid_transition_naming_the_current_status(
    api, host, game_server, make_session, start, target, method
):
    session = given(make_session, host, start)

    # session:* may do anything to a session, except what the table forbids.
    response = getattr(api.as_(game_server), method)(
        url(session), {"status": target, "version": session.version}, format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["sessionStatus"] == start
    assert f"current status: {start}" in body["detail"]
    after = row(session)
    assert (after.status, after.version, after.closes_at) == (session.status, session.version, session.closes_at)


@pytest.mark.parametrize("status", ["open", "in_progress", "closed"])
def test_setting_the_current_status_changes_nothing(api, host, make_session, clock, status):
    session = given(make_session, host, status)
    clock.advance(seconds=5)

    response = api.as_(host).patch(url(session), {"status": status}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == status
    assert response.json()["version"] == session.version
    after = row(session)
    assert (after.version, after.closed_at, after.date_modified) == (
        session.version,
        session.closed_at,
        session.date_modified,
    )


def test_a_member_of_a_hosted_session_may_not_change_its_status(api, host, member, make_session):
    session = given(make_session, host, "open")
    session_join(session_id=session.pk, actor=member)

    response = api.as_(member).patch(url(session), {"status": "in_progress"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "not_host"
    assert row(session).status == "open"


def test_an_outsider_may_not_change_a_public_sessions_status(api, host, outsider, make_session):
    session = given(make_session, host, "open")

    response = api.as_(outsider).patch(url(session), {"status": "closed"}, format="json")

    assert response.status_code == 403
    assert row(session).status == "open"


def test_a_member_of_a_system_session_may_not_change_its_status(api, game_server, member, make_session):
    session = system_session(make_session, game_server, member)

    response = api.as_(member).patch(url(session), {"status": "in_progress"}, format="json")

    assert response.status_code == 403
    assert row(session).status == "open"


def test_a_forbidden_caller_gets_403_before_the_invalid_transition(api, host, member, make_session):
    session = given(make_session, host, "closed")

    response = api.as_(member).patch(url(session), {"status": "open"}, format="json")

    assert response.status_code == 403


def test_check_transition_is_the_one_table(host):
    """Every pair the table does not list is refused for every way of making it."""
    statuses = [s.value for s in SessionStatus]
    for current in statuses:
        for target in statuses:
            for via in ("update", "close", "system"):
                allowed = via in TRANSITIONS.get((current, target), ()) or (
                    via == "update" and current == target and target != "closing"
                )
                if allowed:
                    check_transition(current, target, via)
                else:
                    with pytest.raises(Conflict) as caught:
                        check_transition(current, target, via)
                    assert caught.value.extra["status"] == current


# --- DELETE ?closeAfter=N -------------------------------------------------------------------


@pytest.mark.parametrize("start", ["open", "in_progress"])
@pytest.mark.parametrize("who", ["host", "game_server"])
def test_close_after_puts_the_session_in_closing(api, request, host, make_session, clock, start, who):
    session = given(make_session, host, start)

    response = api.as_(request.getfixturevalue(who)).delete(url(session, "?closeAfter=30"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "closing"
    assert body["closesAt"] == iso(clock.now + timedelta(seconds=30))
    assert body["closedAt"] is None
    assert body["version"] == session.version + 1
    assert response["ETag"] == f'"{session.uid}-{session.version + 1}"'
    after = row(session)
    assert (after.status, after.closes_at) == ("closing", clock.now + timedelta(seconds=30))


@pytest.mark.parametrize("start", ["open", "in_progress", "closing"])
def test_close_after_zero_closes_now(api, host, make_session, clock, start):
    session = given(make_session, host, start)
    clock.advance(seconds=7)

    response = api.as_(host).delete(url(session, "?closeAfter=0"))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["closedAt"], body["version"]) == ("closed", iso(clock.now), session.version + 1)
    assert (row(session).status, row(session).closed_at) == ("closed", clock.now)


@pytest.mark.parametrize("close_after", ["0", "30"])
def test_close_after_on_a_closed_session_is_409(api, host, make_session, clock, close_after):
    session = given(make_session, host, "closed")
    clock.advance(seconds=5)

    response = api.as_(host).delete(url(session, f"?closeAfter={close_after}"))

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["sessionStatus"]) == ("invalid_transition", "closed")
    after = row(session)
    assert (after.version, after.closed_at, after.closes_at) == (session.version, session.closed_at, None)


def test_a_malformed_close_after_is_400_even_on_a_closed_session(api, host, make_session):
    session = given(make_session, host, "closed")

    response = api.as_(host).delete(url(session, "?closeAfter=soon"))

    assert response.status_code == 400  # the request is checked before the state (400 before 409)


def test_nobody_joins_or_leaves_a_closed_session(api, host, member, outsider, make_session):
    session = given(make_session, host, "open")
    session_join(session_id=session.pk, actor=member)
    session_close(session_id=session.pk, actor=host, close_after=0)
    version = row(session).version

    join = api.as_(outsider).post(url(session, "/join"), format="json")
    rejoin = api.as_(member).post(url(session, "/join"), format="json")
    leave = api.as_(member).post(url(session, "/leave"), format="json")

    assert (join.status_code, join.json()["sessionStatus"]) == (409, "closed")
    assert (rejoin.status_code, rejoin.json()["sessionStatus"]) == (409, "closed")
    assert (leave.status_code, leave.json()["code"]) == (409, "session_closed")
    assert row(session).version == version
    assert Membership.objects.filter(session=session).count() == 2


def test_closing_again_may_bring_closes_at_sooner(api, host, make_session, clock):
    session = given(make_session, host, "closing")  # closes 600 s from now
    clock.advance(seconds=10)

    response = api.as_(host).delete(url(session, "?closeAfter=60"))

    assert response.status_code == 200
    assert response.json()["closesAt"] == iso(clock.now + timedelta(seconds=60))
    assert response.json()["version"] == session.version + 1
    assert row(session).closes_at == clock.now + timedelta(seconds=60)


@pytest.mark.parametrize("close_after", [590, 591, 3600])
def test_closing_again_never_brings_closes_at_later(api, host, make_session, clock, close_after):
    session = given(make_session, host, "closing")  # closes 600 s from now
    clock.advance(seconds=10)  # 590 s to go: 590 is the same time, 591 later

    response = api.as_(host).delete(url(session, f"?closeAfter={close_after}"))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["closesAt"], body["version"]) == (
        "closing",
        iso(session.closes_at),
        session.version,
    )
    after = row(session)
    assert (after.closes_at, after.version, after.date_modified) == (
        session.closes_at,
        session.version,
        session.date_modified,
    )


@pytest.mark.parametrize("close_after", ["0", "3600"])
def test_close_after_accepts_the_bounds(api, host, make_session, close_after):
    session = given(make_session, host, "open")

    response = api.as_(host).delete(url(session, f"?closeAfter={close_after}"))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "close_after", ["-1", "3601", "abc", "1.5", "", " 5", "1e3", "+5", "\u0663", "9" * 5000], ids=lambda v: repr(v)[:12]
)
def test_close_after_out_of_range_or_malformed_is_400(api, host, make_session, close_after):
    session = given(make_session, host, "open")

    response = api.as_(host).delete(url(session), QUERY_STRING="closeAfter=" + quote(close_after))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "closeAfter"
    assert (row(session).status, row(session).version) == ("open", session.version)


def test_close_checks_who_before_the_input(api, host, member, make_session):
    session = given(make_session, host, "open")
    session_join(session_id=session.pk, actor=member)

    assert api.as_(member).delete(url(session, "?closeAfter=abc")).status_code == 403
    assert api.as_(member).delete(url(session, "?closeAfter=30")).status_code == 403
    assert row(session).status == "open"


def test_an_outsider_cannot_close_what_it_cannot_see(api, host, outsider, make_session):
    session = given(make_session, host, "open", visibility="private")

    response = api.as_(outsider).delete(url(session, "?closeAfter=0"))

    assert response.status_code == 404
    assert row(session).status == "open"


def test_a_member_of_a_system_session_cannot_close_it(api, game_server, member, make_session):
    session = system_session(make_session, game_server, member)

    response = api.as_(member).delete(url(session, "?closeAfter=0"))

    assert response.status_code == 403
    assert api.as_(game_server).delete(url(session, "?closeAfter=0")).status_code == 200


def test_delete_without_close_after_deletes(api, host, make_session):
    session = given(make_session, host, "closing")

    response = api.as_(host).delete(url(session))

    assert response.status_code == 200
    assert response.json() == {"uid": str(session.uid), "deleted": True}
    assert not GameSession.objects.filter(pk=session.pk).exists()


# --- the grace period -----------------------------------------------------------------------


def test_nobody_joins_a_closing_session_but_members_may_leave(api, host, member, outsider, make_session):
    session = given(make_session, host, "open")
    session_join(session_id=session.pk, actor=member)
    session_close(session_id=session.pk, actor=host, close_after=600)
    version = row(session).version

    newcomer = api.as_(outsider).post(url(session, "/join"), format="json")
    repeated = api.as_(member).post(url(session, "/join"), format="json")
    left = api.as_(member).post(url(session, "/leave"), format="json")

    assert (newcomer.status_code, newcomer.json()["code"], newcomer.json()["sessionStatus"]) == (
        409,
        "not_joinable",
        "closing",
    )
    assert (repeated.status_code, repeated.json()["code"]) == (409, "not_joinable")
    assert left.status_code == 200
    assert left.json()["users"] == [str(host.uid)]
    assert left.json()["version"] == version + 1
    assert list(Membership.objects.filter(session=session).values_list("player_id", flat=True)) == [host.id]


def test_the_last_member_leaving_a_closing_hosted_session_closes_it(api, host, make_session, clock):
    session = given(make_session, host, "closing")
    clock.advance(seconds=3)

    response = api.as_(host).post(url(session, "/leave"), format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["closedAt"]) == ("closed", iso(clock.now))


def test_after_closes_at_the_session_reads_as_closed_everywhere(api, host, member, outsider, make_session, clock):
    session = given(make_session, host, "open")
    session_join(session_id=session.pk, actor=member)
    closing = session_close(session_id=session.pk, actor=host, close_after=30)
    clock.advance(seconds=29)
    assert api.as_(host).get(url(session)).json()["status"] == "closing"
    clock.advance(seconds=1)  # exactly closesAt: due

    read = api.as_(host).get(url(session))
    listed_closed = api.get("/api/v1/sessions", {"status": "closed"}).json()
    listed_closing = api.get("/api/v1/sessions", {"status": "closing"}).json()
    count_closed = api.get("/api/v1/sessions/count", {"status": "closed"}).json()
    count_closing = api.get("/api/v1/sessions/count", {"status": "closing"}).json()
    join = api.as_(outsider).post(url(session, "/join"), format="json")
    leave = api.as_(member).post(url(session, "/leave"), format="json")
    reopen = api.as_(host).patch(url(session), {"status": "open"}, format="json")
    close_again = api.as_(host).delete(url(session, "?closeAfter=10"))
    heartbeat = api.as_(host).post(url(session, "/heartbeat"))

    assert read.status_code == 200
    body = read.json()
    assert (body["status"], body["closedAt"], body["closesAt"]) == ("closed", iso(closing.closes_at), body["closesAt"])
    assert body["version"] == closing.version
    assert read["ETag"] == f'"{session.uid}-{closing.version}"'
    assert [s["uid"] for s in listed_closed] == [str(session.uid)]
    assert listed_closed[0]["status"] == "closed"
    assert listed_closing == []
    assert (count_closed, count_closing) == ({"count": 1}, {"count": 0})
    assert (join.status_code, join.json()["sessionStatus"]) == (409, "closed")
    assert (leave.status_code, leave.json()["code"]) == (409, "session_closed")
    assert (reopen.status_code, reopen.json()["sessionStatus"]) == (409, "closed")
    assert (close_again.status_code, close_again.json()["sessionStatus"]) == (409, "closed")
    assert heartbeat.status_code == 409
    # Nothing was written: the row still says closing until the sweeper records the close.
    after = row(session)
    assert (after.status, after.version, after.closed_at) == ("closing", closing.version, None)


def test_the_sweeper_records_the_close_without_moving_version(api, host, make_session, clock):
    session = given(make_session, host, "open")
    closing = session_close(session_id=session.pk, actor=host, close_after=30)
    clock.advance(seconds=45)
    before = api.as_(host).get(url(session)).json()

    closed = close_due_sessions()

    assert [s.pk for s in closed] == [session.pk]
    after = row(session)
    assert (after.status, after.closed_at, after.version, after.date_modified) == (
        "closed",
        closing.closes_at,
        closing.version,
        closing.date_modified,
    )
    assert api.as_(host).get(url(session)).json() == before
    assert close_due_sessions() == []


def test_a_join_on_a_due_session_does_not_move_version(api, host, outsider, make_session, clock):
    session = given(make_session, host, "closing")
    clock.advance(seconds=601)

    response = api.as_(outsider).post(url(session, "/join"), format="json")

    assert response.status_code == 409
    assert row(session).version == session.version


# --- idle sessions --------------------------------------------------------------------------


def test_an_idle_session_reads_as_closed_at_its_idle_deadline(api, host, make_session, clock):
    created = clock.now
    session = given(make_session, host, "open", idle_timeout=60)
    clock.advance(seconds=59)
    assert api.as_(host).get(url(session)).json()["status"] == "open"
    clock.advance(seconds=1)

    body = api.as_(host).get(url(session)).json()
    count = api.get("/api/v1/sessions/count", {"status": "open"}).json()

    assert (body["status"], body["closedAt"], body["version"]) == (
        "closed",
        iso(created + timedelta(seconds=60)),
        session.version,
    )
    assert count == {"count": 0}
    close_due_sessions()
    after = row(session)
    assert (after.status, after.closed_at, after.version) == (
        "closed",
        created + timedelta(seconds=60),
        session.version,
    )


def test_a_write_keeps_a_session_from_going_idle(api, host, member, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=60)
    clock.advance(seconds=50)
    session_join(session_id=session.pk, actor=member)  # a write: moves version
    clock.advance(seconds=59)

    assert api.as_(host).get(url(session)).json()["status"] == "open"
    clock.advance(seconds=1)
    assert api.as_(host).get(url(session)).json()["status"] == "closed"


def test_a_heartbeat_keeps_a_session_from_going_idle_without_moving_version(api, host, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=60)
    clock.advance(seconds=50)

    response = api.as_(host).post(url(session, "/heartbeat"))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["version"]) == ("open", session.version)
    assert response["ETag"] == f'"{session.uid}-{session.version}"'
    after = row(session)
    assert (after.last_activity_at, after.idle_deadline, after.version, after.date_modified) == (
        clock.now,
        clock.now + timedelta(seconds=60),
        session.version,
        session.date_modified,
    )
    clock.advance(seconds=59)
    assert api.as_(host).get(url(session)).json()["status"] == "open"
    clock.advance(seconds=1)
    assert api.as_(host).get(url(session)).json()["status"] == "closed"


def test_idle_timeout_zero_never_goes_idle(api, host, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=0)
    clock.advance(days=3650)

    assert api.as_(host).get(url(session)).json()["status"] == "open"
    assert close_due_sessions() == []
    assert (row(session).status, row(session).idle_deadline) == ("open", None)


def test_the_idle_timeout_defaults_to_the_setting(api, host, settings, clock):
    settings.SESSION_IDLE_TIMEOUT = 90

    created = api.as_(host).post("/api/v1/sessions", {}, format="json").json()
    clock.advance(seconds=90)

    assert created["idleTimeout"] == 90
    assert api.get(f"/api/v1/sessions/{created['uid']}").json()["status"] == "closed"


def test_a_system_session_goes_idle_and_a_member_keeps_it_alive(api, game_server, member, make_session, clock):
    idle = system_session(make_session, game_server, member, idle_timeout=60)
    kept = system_session(make_session, game_server, member, idle_timeout=60)
    clock.advance(seconds=50)
    assert api.as_(member).post(url(kept, "/heartbeat")).status_code == 200
    clock.advance(seconds=20)

    assert api.as_(member).get(url(idle)).json()["status"] == "closed"
    assert api.as_(member).get(url(kept)).json()["status"] == "open"
    assert [s.pk for s in close_due_sessions()] == [idle.pk]


def test_the_host_sets_the_idle_timeout_on_update(api, host, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=3600)
    clock.advance(seconds=10)

    response = api.as_(host).patch(url(session), {"idleTimeout": 30}, format="json")

    assert response.status_code == 200
    assert (response.json()["idleTimeout"], response.json()["version"]) == (30, session.version + 1)
    assert row(session).idle_deadline == clock.now + timedelta(seconds=30)
    clock.advance(seconds=30)
    assert api.as_(host).get(url(session)).json()["status"] == "closed"


def test_setting_the_idle_timeout_to_zero_stops_the_idle_clock(api, host, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=60)

    api.as_(host).patch(url(session), {"idleTimeout": 0}, format="json")
    clock.advance(days=30)

    assert row(session).idle_deadline is None
    assert api.as_(host).get(url(session)).json()["status"] == "open"


def test_session_star_sets_the_idle_timeout_of_a_system_session(api, game_server, member, make_session):
    session = system_session(make_session, game_server, member, idle_timeout=60)

    by_member = api.as_(member).patch(url(session), {"idleTimeout": 0}, format="json")
    by_operator = api.as_(game_server).patch(url(session), {"idleTimeout": 0}, format="json")

    assert by_member.status_code == 403
    assert by_operator.status_code == 200
    assert row(session).idle_timeout == 0


@pytest.mark.parametrize("value", [-1, "60", 1.5, None, 30 * 24 * 3600 + 1])
def test_a_bad_idle_timeout_is_400(api, host, value):
    response = api.as_(host).post("/api/v1/sessions", {"idleTimeout": value}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "idleTimeout"
    assert not GameSession.objects.exists()


def test_an_idle_session_is_not_revived_by_a_heartbeat(api, host, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=60)
    clock.advance(seconds=61)

    response = api.as_(host).post(url(session, "/heartbeat"))

    assert (response.status_code, response.json()["code"]) == (409, "session_closed")
    assert row(session).last_activity_at < clock.now


# --- heartbeat ------------------------------------------------------------------------------


def test_session_star_may_heartbeat_any_session(api, host, game_server, make_session, clock):
    session = given(make_session, host, "in_progress", idle_timeout=60)
    clock.advance(seconds=30)

    response = api.as_(game_server).post(url(session, "/heartbeat"))

    assert response.status_code == 200
    assert row(session).idle_deadline == clock.now + timedelta(seconds=60)


def test_a_heartbeat_on_a_closing_session_is_allowed(api, host, make_session):
    session = given(make_session, host, "closing")

    response = api.as_(host).post(url(session, "/heartbeat"))

    assert (response.status_code, response.json()["status"]) == (200, "closing")


def test_a_member_of_a_hosted_session_may_not_heartbeat(api, host, member, make_session, clock):
    session = given(make_session, host, "open", idle_timeout=60)
    session_join(session_id=session.pk, actor=member)
    deadline = row(session).idle_deadline
    clock.advance(seconds=10)

    response = api.as_(member).post(url(session, "/heartbeat"))

    assert (response.status_code, response.json()["code"]) == (403, "not_host")
    assert row(session).idle_deadline == deadline


def test_an_outsider_may_not_heartbeat(api, host, outsider, make_session):
    public = given(make_session, host, "open")
    private = given(make_session, host, "open", visibility="private")

    assert api.as_(outsider).post(url(public, "/heartbeat")).status_code == 403
    assert api.as_(outsider).post(url(private, "/heartbeat")).status_code == 404


def test_heartbeat_needs_credentials(api, host, make_session):
    session = given(make_session, host, "open")

    assert api.post(url(session, "/heartbeat")).status_code == 401


def test_a_heartbeat_on_a_closed_session_is_409(api, host, make_session):
    session = given(make_session, host, "closed")

    response = api.as_(host).post(url(session, "/heartbeat"))

    assert (response.status_code, response.json()["sessionStatus"]) == (409, "closed")


def test_heartbeat_query_count(api, host, make_session, django_assert_num_queries):
    session = given(make_session, host, "open", idle_timeout=60)
    api.as_(host)

    # 1 visible_session; 2 SAVEPOINT; 3 lock the row (SELECT ... FOR UPDATE); 4 UPDATE
    # last_activity_at and idle_deadline; 5 RELEASE SAVEPOINT; 6 re-read the document.
    with django_assert_num_queries(6):
        response = api.post(url(session, "/heartbeat"))

    assert response.status_code == 200


# --- closedAt, and history after close ------------------------------------------------------


def _close_by_update(api, host, session, clock):
    api.as_(host).patch(url(session), {"status": "closed"}, format="json")
    return clock.now


def _close_now(api, host, session, clock):
    api.as_(host).delete(url(session, "?closeAfter=0"))
    return clock.now


def _close_with_grace(api, host, session, clock):
    api.as_(host).delete(url(session, "?closeAfter=20"))
    closes_at = clock.now + timedelta(seconds=20)
    clock.advance(seconds=25)
    return closes_at


def _close_idle(api, host, session, clock):
    deadline = row(session).idle_deadline
    clock.advance(seconds=130)
    return deadline


def _close_by_last_leave(api, host, session, clock):
    api.as_(host).post(url(session, "/leave"))
    return clock.now


@pytest.mark.parametrize("close", [_close_by_update, _close_now, _close_with_grace, _close_idle, _close_by_last_leave])
@pytest.mark.parametrize("swept", [False, True])
def test_every_closed_session_shows_when_it_closed(api, host, make_session, clock, close, swept):
    session = given(make_session, host, "open", idle_timeout=120)
    clock.advance(seconds=3)

    expected = close(api, host, session, clock)
    if swept:
        close_due_sessions()

    body = api.as_(host).get(url(session)).json()
    assert (body["status"], body["closedAt"]) == ("closed", iso(expected))


def test_a_system_session_stays_open_when_its_last_member_leaves(api, game_server, member, make_session):
    session = system_session(make_session, game_server, member)

    response = api.as_(member).post(url(session, "/leave"))

    assert (response.status_code, response.json()["status"], response.json()["users"]) == (200, "open", [])


def test_a_closed_session_keeps_its_history(api, host, member, make_session, clock):
    session = given(make_session, host, "open", num_teams=2, team_size=2, idle_timeout=60)
    session_join(session_id=session.pk, actor=member)
    membership = Membership.objects.get(session=session, player=member)
    ScoreFactory(session=session, player=member)
    before = api.as_(host).get(url(session)).json()
    clock.advance(seconds=61)
    close_due_sessions()

    body = api.as_(host).get(url(session)).json()

    assert body["status"] == "closed"
    assert (body["users"], body["teams"]) == (before["users"], before["teams"])
    assert body["users"] == [str(host.uid), str(member.uid)]
    assert Team.objects.filter(session=session).count() == 2
    assert Membership.objects.get(session=session, player=member).team_id == membership.team_id
    assert Score.objects.filter(session=session, player=member).count() == 1
    join = api.as_(member).post(url(session, "/join"))
    assert join.status_code == 409


# --- past its deadline a session reads closed on every route; closing refuses every join ------


def _close_in_30s(host, session) -> None:
    session_close(session_id=session.pk, actor=host, close_after=30)


def _let_it_idle(host, session) -> None:
    """Nothing to do: its idle deadline (idleTimeout 30) runs from the last write."""


@pytest.mark.parametrize("start_deadline", [_close_in_30s, _let_it_idle], ids=["closesAt", "idle"])
def test_past_its_deadline_a_session_reads_closed_on_every_other_route(
    api, host, member, outsider, make_session, clock, start_deadline
):
    """Beyond GET, lists, filters, counts and joins (see
    test_after_closes_at_the_session_reads_as_closed_everywhere): the scores document, the member
    filter, invites, reservations, team moves and kicks. None of them writes: the row still says
    what it said, and `version` has not moved."""
    session = make_session(host, num_teams=2, idle_timeout=0 if start_deadline is _close_in_30s else 30)
    session_join(session_id=session.pk, actor=member)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    start_deadline(host, session)
    session = row(session)
    deadline = session.due_at()
    clock.now = deadline  # exactly the deadline: due

    scores = api.as_(host).get(url(session, "/scores")).json()["session"]
    by_member = api.get("/api/v1/sessions", {"user": str(member.uid)}).json()
    accept = api.as_(outsider).post(f"/api/v1/invites/{invite.pk}/accept")
    invited = api.as_(host).post(url(session, "/invites"), {"player": str(PlayerFactory().uid)}, format="json")
    reserved = api.post(url(session, "/reservations"), {"player": str(PlayerFactory().uid)}, format="json")
    kicked = api.post(url(session, "/kick"), {"player": str(member.uid)}, format="json")
    moved = api.as_(member).post(url(session, "/teams/1/join"), format="json")

    assert (scores["status"], scores["closedAt"], scores["version"]) == ("closed", iso(deadline), session.version)
    assert [(s["uid"], s["status"]) for s in by_member] == [(str(session.uid), "closed")]
    assert (accept.status_code, accept.json()["sessionStatus"]) == (409, "closed")
    assert (invited.status_code, invited.json()["code"]) == (409, "session_closed")
    assert (reserved.status_code, reserved.json()["sessionStatus"]) == (409, "closed")
    assert (moved.status_code, moved.json()["code"]) == (409, "session_closed")
    assert (kicked.status_code, kicked.json()["code"]) == (409, "session_closed")
    after = row(session)
    assert (after.status, after.version, after.closed_at) == (session.status, session.version, None)
    assert Invite.objects.get(pk=invite.pk).state == InviteState.PENDING
    assert Membership.objects.filter(session=session).count() == 2
    assert not Reservation.objects.exists()


def test_on_a_closing_session_every_way_of_joining_is_409(api, host, member, outsider, make_session):
    """Invite accepted, a reserved place used, a GET join: "every join gets 409"."""
    session = make_session(host)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    session_close(session_id=session.pk, actor=host, close_after=600)
    version = row(session).version

    accept = api.as_(outsider).post(f"/api/v1/invites/{invite.pk}/accept")
    with_place = api.as_(member).post(url(session, "/join"), format="json")
    by_get = api.as_(member).get(url(session, "/join"))

    for response in (accept, with_place, by_get):
        assert (response.status_code, response.json()["code"], response.json()["sessionStatus"]) == (
            409,
            "not_joinable",
            "closing",
        )
    assert list(Membership.objects.filter(session=session).values_list("player_id", flat=True)) == [host.pk]
    assert row(session).version == version


# --- what keeps a session alive, and the project's idle timeout -------------------------------


def test_what_does_not_move_version_does_not_keep_a_session_alive(api, host, member, make_session, clock):
    session = make_session(host, name="Same name", idle_timeout=60)
    session_join(session_id=session.pk, actor=member)
    version = row(session).version
    clock.advance(seconds=50)

    same_name = api.as_(host).patch(url(session), {"name": "Same name"}, format="json")
    repeated_join = api.as_(member).post(url(session, "/join"), format="json")
    clock.advance(seconds=10)  # 60 s after the last write

    assert (same_name.json()["version"], repeated_join.json()["version"]) == (version, version)
    body = api.get(url(session)).json()
    assert (body["status"], body["closedAt"], body["version"]) == ("closed", iso(clock.now), version)


def test_the_project_idle_timeout_is_one_hour(api, host, clock):
    assert settings.SESSION_IDLE_TIMEOUT == 3600

    created = api.as_(host).post("/api/v1/sessions", {}, format="json").json()
    clock.advance(seconds=3599)
    just_before = api.get(f"/api/v1/sessions/{created['uid']}").json()["status"]
    clock.advance(seconds=1)

    assert created["idleTimeout"] == 3600
    assert just_before == "open"
    assert api.get(f"/api/v1/sessions/{created['uid']}").json()["status"] == "closed"


# --- the sweeper and row locks (PostgreSQL) ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweeper_skips_a_session_a_service_holds_and_a_later_run_closes_it(make_session, clock):
    """SKIP LOCKED: a sweeper never waits behind a write in progress (nor closes under it); the
    next run (cron, a minute later) closes what it skipped. Each session is closed exactly once."""
    host = PlayerFactory(username="sweep-host")
    held, free = (make_session(host, idle_timeout=60) for _ in range(2))
    clock.advance(seconds=61)
    locked, release = threading.Event(), threading.Event()
    swept: list[list[GameSession]] = []
    errors: list[BaseException] = []

    def hold() -> None:  # a service holding the session's row lock
        try:
            with transaction.atomic():
                GameSession.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def sweep() -> None:
        try:
            swept.append(close_due_sessions())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        sweeper.join(10)
        blocked = sweeper.is_alive()
    finally:
        release.set()
        holder.join()
    sweeper.join()

    assert errors == []
    assert not blocked, "the sweeper waited for a row another transaction holds"
    assert [s.pk for s in swept[0]] == [free.pk]
    assert row(held).status == "open"  # skipped, and still reads as closed (it is due)
    assert [s.pk for s in close_due_sessions()] == [held.pk]
    assert close_due_sessions() == []
    assert {row(s).version for s in (held, free)} == {0}
