"""Every change of a session is an event, written by the workflow that makes it, once, in its
transaction: with the session's version after the change (null when it did not move it), who
made it (null for time) and what changed. A refused or rolled-back change writes nothing, and
a change made by time gets its event once, whether the sweeper or a request applies it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from sessions_app.event_models import SessionEvent
from sessions_app.models import GameSession, Invite, Reservation
from sessions_app.services import invites, lifecycle, membership, scores, sessions
from sessions_project.errors import Conflict

from .conftest import version_of
from .factories import ChartFactory, PlayerFactory

pytestmark = pytest.mark.django_db


def events_of(session, *types: str) -> list[SessionEvent]:
    queryset = SessionEvent.objects.filter(session_uid=session.uid).order_by("id")
    if types:
        queryset = queryset.filter(type__in=types)
    return list(queryset)


def only(session, type_: str) -> SessionEvent:
    found = events_of(session, type_)
    assert len(found) == 1, [e.type for e in events_of(session)]
    return found[0]


def types_after(session, mark: int) -> list[str]:
    return [e.type for e in SessionEvent.objects.filter(session_uid=session.uid, id__gt=mark).order_by("id")]


def last_id() -> int:
    return SessionEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- sessions --------------------------------------------------------------------------------


def test_creating_a_session_records_session_created_with_its_first_version(host, make_session):
    session = make_session(host, visibility="private")

    event = only(session, "session.created")
    assert event.version == 0 == version_of(session)
    assert event.actor_uid == host.uid
    assert event.data == {"hostUid": str(host.uid), "status": "open", "visibility": "private", "users": [str(host.uid)]}
    assert [e.type for e in events_of(session)] == ["session.created"]


def test_creating_a_session_with_invitees_records_their_invites(host, member, make_session):
    session = make_session(host, invited=[str(member.uid)])

    assert [e.type for e in events_of(session)] == ["session.created", "invite.created"]
    invite = only(session, "invite.created")
    assert invite.player_uid == member.uid
    assert invite.data["playerUid"] == str(member.uid)
    assert invite.data["inviteId"] == Invite.objects.get().pk


def test_an_update_records_what_changed_and_never_the_password(host, session):
    mark = last_id()

    sessions.session_update(session_id=session.pk, actor=host, values={"name": "Lobby", "password": "s3cret"})

    event = only(session, "session.updated")
    assert event.version == version_of(session)
    assert event.data == {"changes": {"hasPassword": True, "name": "Lobby"}}
    assert "s3cret" not in str(event.data)
    assert types_after(session, mark) == ["session.updated"]


def test_an_update_that_changes_nothing_records_nothing(host, session):
    mark = last_id()

    sessions.session_update(session_id=session.pk, actor=host, values={"name": session.name})

    assert types_after(session, mark) == []


def test_handing_the_host_over_records_host_changed(host, member, session):
    sessions.session_update(session_id=session.pk, actor=host, values={"host_uid": member.uid})

    updated, changed = only(session, "session.updated"), only(session, "host.changed")
    assert changed.data == {"previousHostUid": str(host.uid), "hostUid": str(member.uid)}
    assert updated.data == {"changes": {"hostUid": str(member.uid)}}
    assert changed.version == updated.version == version_of(session)


def test_resizing_teams_records_the_members_it_moves(host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)
    membership.session_join(session_id=session.pk, actor=member, team=1)
    mark = last_id()

    sessions.session_update(session_id=session.pk, actor=host, values={"num_teams": 1})

    assert types_after(session, mark) == ["session.updated", "member.moved"]
    moved = only(session, "member.moved")
    assert moved.data == {"playerUid": str(member.uid), "team": 0, "previousTeam": 1}
    assert only(session, "session.updated").data == {"changes": {"numTeams": 1, "teamSize": 2}}


def test_closing_by_update_records_the_update_and_the_close(host, session):
    sessions.session_update(session_id=session.pk, actor=host, values={"status": "closed"})

    closed = only(session, "session.closed")
    assert closed.version == version_of(session)
    assert closed.data["reason"] == "update"


def test_deleting_a_session_records_session_deleted_which_outlives_it(host, session):
    sessions.session_delete(session_id=session.pk, actor=host)

    assert not GameSession.objects.filter(pk=session.pk).exists()
    event = only(session, "session.deleted")
    assert event.version is None
    assert event.actor_uid == host.uid


def test_truncating_records_a_deletion_per_session(host, make_session):
    made = [make_session(host), make_session(host)]

    assert sessions.session_truncate(actor=host) == 2

    for session in made:
        assert only(session, "session.deleted").actor_uid == host.uid


# --- membership --------------------------------------------------------------------------------


def test_a_join_records_member_joined_with_its_team_and_version(host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)

    membership.session_join(session_id=session.pk, actor=member)

    event = only(session, "member.joined")
    assert event.version == version_of(session) == 1
    assert event.player_uid == member.uid
    assert event.actor_uid == member.uid
    assert event.data == {"playerUid": str(member.uid), "team": 1}


def test_a_repeated_join_records_nothing(session, member):
    mark = last_id()

    membership.session_join(session_id=session.pk, actor=member)

    assert types_after(session, mark) == []


def test_a_join_refused_as_full_records_nothing(host, member, make_session):
    session = make_session(host, num_teams=1, team_size=1)
    mark = last_id()

    with pytest.raises(Conflict):
        membership.session_join(session_id=session.pk, actor=member)

    assert types_after(session, mark) == []


def test_a_change_rolled_back_after_it_was_made_leaves_no_event(host, member, make_session):
    session = make_session(host)
    mark = last_id()

    def join_then_fail():
        with transaction.atomic():
            membership.session_join(session_id=session.pk, actor=member)
            assert types_after(session, mark) == ["member.joined"]
            raise RuntimeError("the caller's transaction fails after the join")

    with pytest.raises(RuntimeError):
        join_then_fail()

    assert types_after(session, mark) == []


def test_a_wrong_password_records_nothing_though_its_failure_is_kept(host, member, make_session):
    session = make_session(host, password="s3cret")
    mark = last_id()

    with pytest.raises(Exception, match="Wrong session password"):
        membership.session_join(session_id=session.pk, actor=member, password="nope")

    assert types_after(session, mark) == []


def test_a_leave_records_member_left(session, member):
    membership.session_leave(session_id=session.pk, actor=member)

    event = only(session, "member.left")
    assert event.data == {"playerUid": str(member.uid)}
    assert event.version == version_of(session)


def test_the_hosts_leave_records_the_hand_over(session, host, member):
    mark = last_id()

    membership.session_leave(session_id=session.pk, actor=host)

    assert types_after(session, mark) == ["member.left", "host.changed"]
    assert only(session, "host.changed").data == {"previousHostUid": str(host.uid), "hostUid": str(member.uid)}


def test_the_last_leave_records_the_close(host, make_session):
    session = make_session(host)
    mark = last_id()

    membership.session_leave(session_id=session.pk, actor=host)

    assert types_after(session, mark) == ["member.left", "session.closed"]
    closed = only(session, "session.closed")
    assert closed.version == version_of(session)
    assert closed.data["reason"] == "empty"


def test_a_kick_records_member_kicked_by_the_host(session, host, member):
    membership.session_kick(session_id=session.pk, actor=host, player_uid=member.uid)

    event = only(session, "member.kicked")
    assert (event.actor_uid, event.player_uid) == (host.uid, member.uid)
    assert event.version == version_of(session)


def test_kicking_a_reservation_holder_records_the_cancellation(host, member, make_session):
    session = make_session(host)
    invites.reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    mark = last_id()

    membership.session_kick(session_id=session.pk, actor=host, player_uid=member.uid)

    assert types_after(session, mark) == ["reservation.cancelled"]
    assert only(session, "reservation.cancelled").version is None


def test_kicking_an_invitee_records_the_revocation(host, member, make_session):
    session = make_session(host)
    invites.invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
    mark = last_id()

    membership.session_kick(session_id=session.pk, actor=host, player_uid=member.uid)

    assert types_after(session, mark) == ["invite.revoked"]
    assert only(session, "invite.revoked").player_uid == member.uid


def test_a_team_change_records_member_moved(host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)
    membership.session_join(session_id=session.pk, actor=member)  # into team 1

    membership.session_move_to_team(session_id=session.pk, actor=member, index=0)

    event = only(session, "member.moved")
    assert event.data == {"playerUid": str(member.uid), "team": 0, "previousTeam": 1}
    assert event.version == version_of(session)


# --- invites and reservations ------------------------------------------------------------------


def test_each_invite_workflow_records_its_event_once(host, member, outsider, make_session):
    session = make_session(host)
    first = invites.invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
    second = invites.invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    third_player = PlayerFactory()
    third = invites.invite_create(session_id=session.pk, actor=host, player_uid=third_player.uid)

    invites.invite_accept(invite_id=first.pk, actor=member)
    invites.invite_decline(invite_id=second.pk, actor=outsider)
    invites.invite_revoke(invite_id=third.pk, actor=host)

    assert [
        (e.type, e.player_uid) for e in events_of(session, "invite.accepted", "invite.declined", "invite.revoked")
    ] == [
        ("invite.accepted", member.uid),
        ("invite.declined", outsider.uid),
        ("invite.revoked", third_player.uid),
    ]
    assert len(events_of(session, "invite.created")) == 3
    accepted = only(session, "invite.accepted")
    assert accepted.version == only(session, "member.joined").version
    assert only(session, "invite.revoked").version == version_of(session)


def test_reservations_record_created_and_cancelled_without_a_version(host, member, make_session):
    session = make_session(host)
    reservation = invites.reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)

    invites.reservation_cancel(reservation_id=reservation.pk, session_id=session.pk, actor=member)

    created, cancelled = only(session, "reservation.created"), only(session, "reservation.cancelled")
    assert created.version is None
    assert cancelled.version is None
    assert created.data["reservationId"] == cancelled.data["reservationId"] == reservation.pk
    assert cancelled.actor_uid == member.uid


# --- changes made by time -------------------------------------------------------------------


def test_a_grace_period_close_records_closing_then_one_close_by_the_sweeper(host, make_session, clock):
    session = make_session(host)
    lifecycle.session_close(session_id=session.pk, actor=host, close_after=60)
    closing = only(session, "session.closing")
    assert closing.version == version_of(session)
    clock.advance(seconds=61)

    lifecycle.close_due_sessions()
    lifecycle.close_due_sessions()  # nothing left to do

    closed = only(session, "session.closed")
    assert (closed.version, closed.actor_uid) == (None, None)
    assert closed.data["reason"] == "closesAt"


def test_a_due_close_is_recorded_once_by_the_request_that_settles_it(host, member, make_session, clock):
    session = make_session(host, idle_timeout=60)
    membership.session_join(session_id=session.pk, actor=member)
    clock.advance(seconds=61)

    with pytest.raises(Conflict):  # settles the close, then refuses the leave; the close stays
        membership.session_leave(session_id=session.pk, actor=member)
    lifecycle.close_due_sessions()

    closed = only(session, "session.closed")
    assert closed.data["reason"] == "idle"
    assert closed.actor_uid is None


def test_closing_now_records_session_closed_with_the_version(host, make_session):
    session = make_session(host)

    lifecycle.session_close(session_id=session.pk, actor=host, close_after=0)

    closed = only(session, "session.closed")
    assert closed.version == version_of(session)
    assert closed.actor_uid == host.uid


@pytest.mark.parametrize("applied_by", ["sweeper", "request"])
def test_an_invite_expiry_is_recorded_once(host, member, make_session, clock, applied_by):
    session = make_session(host)
    invites.invite_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=5)
    )
    clock.advance(seconds=6)

    if applied_by == "request":  # inviting again frees the slot of the expired invite first
        invites.invite_create(session_id=session.pk, actor=host, player_uid=member.uid)
    lifecycle.close_due_sessions()
    lifecycle.close_due_sessions()

    expired = only(session, "invite.expired")
    assert (expired.version, expired.actor_uid, expired.player_uid) == (None, None, member.uid)
    assert Invite.objects.filter(state="expired").count() == 1


@pytest.mark.parametrize("applied_by", ["sweeper", "request"])
def test_a_reservation_expiry_is_recorded_once(host, member, make_session, clock, applied_by):
    session = make_session(host)
    reservation = invites.reservation_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=5)
    )
    clock.advance(seconds=6)

    if applied_by == "request":  # reserving again drops the expired one first
        invites.reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    lifecycle.close_due_sessions()
    lifecycle.close_due_sessions()

    expired = only(session, "reservation.expired")
    assert (expired.version, expired.actor_uid, expired.player_uid) == (None, None, member.uid)
    assert expired.data["reservationId"] == reservation.pk
    assert not Reservation.objects.filter(pk=reservation.pk).exists()


# --- scores ------------------------------------------------------------------------------------


def test_submitting_a_score_records_score_submitted(session, member):
    chart = ChartFactory()

    score = scores.score_submit(
        session_id=session.pk, actor=member, chart_id=chart.pk, value=scores.parse_score_value(7)
    )

    event = only(session, "score.submitted")
    assert event.version is None
    assert event.player_uid == member.uid
    assert event.data == {"playerUid": str(member.uid), "scoreId": score.pk, "chart": chart.pk, "value": 7}


# --- every type ----------------------------------------------------------------------------


def test_every_event_id_is_above_the_ones_before_it(host, member, make_session):
    session = make_session(host)
    membership.session_join(session_id=session.pk, actor=member)
    membership.session_leave(session_id=session.pk, actor=member)

    ids = [e.id for e in events_of(session)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
