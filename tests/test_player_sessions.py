"""GET /players/{uuid}/sessions (seed 003): access rules, what the view shows, its ETag and
lastUpdatedTimestamp after every kind of change (and only then), and its query count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from sessions_app.models import SCOPE_ANY, SCOPE_READ_PLAYER_ANY, GameSession
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import close_due_sessions, session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_delete
from sessions_project.times import iso

from .conftest import grant
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

NOBODY = "00000000-0000-4000-8000-000000000000"


def view(api, viewer, player_uid, **headers):
    return api.as_(viewer).get(f"/api/v1/players/{player_uid}/sessions", **headers)


# --- access -----------------------------------------------------------------------------------


def test_a_player_reads_its_own_view_through_the_players_group(api, member):
    response = view(api, member, member.uid)
    assert response.status_code == 200, response.json()
    assert response.json() == {"sessions": {}, "lastUpdatedTimestamp": None}
    assert response["ETag"].startswith('"')


def test_with_a_real_jwt_the_scopes_come_from_the_token(api, member):
    token = api.post("/api/v1/auth/token", {"username": "member", "password": "pass-word-123"}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token.json()['access']}")
    assert api.get(f"/api/v1/players/{member.uid}/sessions").status_code == 200
    other = api.get(f"/api/v1/players/{PlayerFactory().uid}/sessions")
    assert (other.status_code, other.json()["code"]) == (403, "read_player_forbidden")


def test_without_the_self_scope_even_ones_own_view_is_403(api):
    bare = PlayerFactory(in_players_group=False)
    response = view(api, bare, bare.uid)
    assert (response.status_code, response.json()["code"]) == (403, "read_player_forbidden")
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("target", ["existing", "unknown"])
def test_another_players_view_is_403_whether_or_not_it_exists(api, member, outsider, target):
    uid = outsider.uid if target == "existing" else NOBODY
    response = view(api, member, uid)
    assert (response.status_code, response.json()["code"]) == (403, "read_player_forbidden")


@pytest.mark.parametrize("scope", [SCOPE_READ_PLAYER_ANY, SCOPE_ANY])
def test_the_any_scope_or_session_star_reads_anyone_and_gets_404_for_nobody(api, host, member, make_session, scope):
    operator = grant(PlayerFactory(in_players_group=False), scope)
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    found = view(api, operator, member.uid)
    missing = view(api, operator, NOBODY)
    own = view(api, operator, operator.uid)

    assert found.status_code == 200
    assert found.json()["sessions"]["default"]["sessionIds"] == [str(session.uid)]
    assert (missing.status_code, missing.json()["code"]) == (404, "player_not_found")
    assert own.status_code == 200


@pytest.mark.parametrize("viewer", ["bare", "operator"])
def test_a_malformed_uuid_is_400_before_any_permission_check(api, viewer):
    player = PlayerFactory(in_players_group=False)
    if viewer == "operator":
        player = grant(player, SCOPE_READ_PLAYER_ANY)
    response = view(api, player, "not-a-uuid")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_uuid")
    assert response.json()["errors"][0]["field"] == "player_uuid"


def test_without_credentials_it_is_401(api, member):
    response = api.get(f"/api/v1/players/{member.uid}/sessions")
    assert response.status_code == 401


# --- what it shows ----------------------------------------------------------------------------


def test_the_view_groups_memberships_invites_and_reservations_by_type(api, host, member, make_session, clock):
    ranked_1 = make_session(host, type="ranked")
    ranked_2 = make_session(host, type="ranked")
    casual = make_session(host, type="casual", visibility="private")
    arcade = make_session(host, type="arcade")
    session_join(session_id=ranked_2.pk, actor=member)
    clock.advance(seconds=1)
    session_join(session_id=ranked_1.pk, actor=member)
    invite_create(session_id=casual.pk, actor=host, player_uid=member.uid)
    clock.advance(seconds=1)
    reservation_create(session_id=arcade.pk, actor=host, player_uid=member.uid)

    response = view(api, member, member.uid)

    assert response.json() == {
        "sessions": {
            "arcade": {"type": "arcade", "sessionIds": [], "pendingInvites": {}, "reservedSessions": [str(arcade.uid)]},
            "casual": {
                "type": "casual",
                "sessionIds": [],
                "pendingInvites": {
                    str(casual.uid): {"sessionId": str(casual.uid), "invitingPlayerUuid": str(host.uid)}
                },
                "reservedSessions": [],
            },
            "ranked": {
                "type": "ranked",
                "sessionIds": [str(ranked_2.uid), str(ranked_1.uid)],  # joining order
                "pendingInvites": {},
                "reservedSessions": [],
            },
        },
        "lastUpdatedTimestamp": iso(clock.now),
    }


def test_closed_sessions_are_in_no_view(api, host, member, make_session, clock):
    closed = make_session(host)
    past_deadline = make_session(host)
    invited_to_closed = make_session(host)
    for session in (closed, past_deadline):
        session_join(session_id=session.pk, actor=member)
    invite_create(session_id=invited_to_closed.pk, actor=host, player_uid=member.uid)
    session_close(session_id=closed.pk, actor=host, close_after=0)
    session_close(session_id=invited_to_closed.pk, actor=host, close_after=0)
    session_close(session_id=past_deadline.pk, actor=host, close_after=30)
    assert view(api, member, member.uid).json()["sessions"]["default"]["sessionIds"] == [str(past_deadline.uid)]

    clock.advance(seconds=31)  # past closesAt: closed, though no sweeper has run

    assert view(api, member, member.uid).json()["sessions"] == {}
    assert GameSession.objects.get(pk=past_deadline.pk).status == "closing"


def test_expired_invites_and_reservations_are_not_shown(api, host, member, make_session, clock):
    session = make_session(host)
    other = make_session(host)
    invite_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=10)
    )
    reservation_create(
        session_id=other.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=20)
    )
    clock.advance(seconds=21)
    assert view(api, member, member.uid).json()["sessions"] == {}


# --- ETag and lastUpdatedTimestamp ------------------------------------------------------------


@dataclass
class World:
    """`player` is a member of `joined`, invited to `invited` (expires in 100 s), holds a place
    in `reserved` (expires in 200 s) and is not in `open`; then 10 s pass."""

    player: object
    host: object
    joined: GameSession
    invited: GameSession
    reserved: GameSession
    open: GameSession
    invite_id: int
    reservation_id: int
    invite_expires: object
    reservation_expires: object


@pytest.fixture
def world(host, member, make_session, clock) -> World:
    joined = make_session(host, type="ranked")
    invited = make_session(host, type="casual", password="s3cret")
    reserved = make_session(host, type="casual")
    open_session = make_session(host, type="ranked")
    session_join(session_id=joined.pk, actor=member)
    invite = invite_create(
        session_id=invited.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=100)
    )
    reservation = reservation_create(
        session_id=reserved.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=200)
    )
    world = World(
        member,
        host,
        joined,
        invited,
        reserved,
        open_session,
        invite.pk,
        reservation.pk,
        invite.expires_at,
        reservation.expires_at,
    )
    clock.advance(seconds=10)
    return world


# Each change returns the time the view changed (what lastUpdatedTimestamp must then say).
def join_open(api, w, clock):
    assert api.as_(w.player).post(f"/api/v1/sessions/{w.open.uid}/join").status_code == 200
    return clock.now


def leave_joined(api, w, clock):
    assert api.as_(w.player).post(f"/api/v1/sessions/{w.joined.uid}/leave").status_code == 200
    return clock.now


def kicked_from_joined(api, w, clock):
    response = api.as_(w.host).post(
        f"/api/v1/sessions/{w.joined.uid}/kick", {"player": str(w.player.uid)}, format="json"
    )
    assert response.status_code == 200
    return clock.now


def invited_to_open(api, w, clock):
    response = api.as_(w.host).post(
        f"/api/v1/sessions/{w.open.uid}/invites", {"player": str(w.player.uid)}, format="json"
    )
    assert response.status_code == 201
    return clock.now


def invited_by_update(api, w, clock):
    response = api.as_(w.host).patch(f"/api/v1/sessions/{w.open.uid}", {"invited": [str(w.player.uid)]}, format="json")
    assert response.status_code == 200
    return clock.now


def uninvited_by_update(api, w, clock):
    assert api.as_(w.host).patch(f"/api/v1/sessions/{w.invited.uid}", {"invited": []}, format="json").status_code == 200
    return clock.now


def invite_declined(api, w, clock):
    assert api.as_(w.player).post(f"/api/v1/invites/{w.invite_id}/decline").status_code == 200
    return clock.now


def invite_revoked(api, w, clock):
    assert api.as_(w.host).delete(f"/api/v1/invites/{w.invite_id}").status_code == 200
    return clock.now


def invite_accepted(api, w, clock):
    assert api.as_(w.player).post(f"/api/v1/invites/{w.invite_id}/accept").status_code == 200
    return clock.now


def invite_expired(api, w, clock):
    clock.advance(seconds=95)  # 5 s past the invite's expiry
    return w.invite_expires


def reserved_in_open(api, w, clock):
    response = api.as_(w.host).post(
        f"/api/v1/sessions/{w.open.uid}/reservations", {"player": str(w.player.uid)}, format="json"
    )
    assert response.status_code == 201
    return clock.now


def reservation_cancelled(api, w, clock):
    url = f"/api/v1/sessions/{w.reserved.uid}/reservations/{w.reservation_id}"
    assert api.as_(w.player).delete(url).status_code == 200
    return clock.now


def reservation_used(api, w, clock):
    assert api.as_(w.player).post(f"/api/v1/sessions/{w.reserved.uid}/join").status_code == 200
    return clock.now


def reservation_expired(api, w, clock):
    clock.advance(seconds=195)  # past both the invite's and the reservation's expiry
    return w.reservation_expires


def session_closed(api, w, clock):
    assert api.as_(w.host).delete(f"/api/v1/sessions/{w.joined.uid}?closeAfter=0").status_code == 200
    return clock.now


def session_deleted(api, w, clock):
    assert api.as_(w.host).delete(f"/api/v1/sessions/{w.joined.uid}").status_code == 200
    return clock.now


def type_changed(api, w, clock):
    assert (
        api.as_(w.host).patch(f"/api/v1/sessions/{w.joined.uid}", {"type": "arcade"}, format="json").status_code == 200
    )
    return clock.now


CHANGES = [
    join_open,
    leave_joined,
    kicked_from_joined,
    invited_to_open,
    invited_by_update,
    uninvited_by_update,
    invite_declined,
    invite_revoked,
    invite_accepted,
    invite_expired,
    reserved_in_open,
    reservation_cancelled,
    reservation_used,
    reservation_expired,
    session_closed,
    session_deleted,
    type_changed,
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
def test_every_kind_of_change_gives_a_new_etag_and_timestamp(api, world, clock, change):
    first = view(api, world.player, world.player.uid)
    assert first.status_code == 200
    unchanged = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=first["ETag"])
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == first["ETag"]
    clock.advance(seconds=3)

    changed_at = change(api, world, clock)
    clock.advance(seconds=2)  # read a little later: the timestamp is when it changed, not now

    second = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200
    assert second["ETag"] != first["ETag"]
    assert second.json() != first.json()
    assert second.json()["lastUpdatedTimestamp"] == iso(changed_at)


def sweeper_runs(api, w, clock):
    close_due_sessions()


def another_player_joins(api, w, clock):
    assert api.as_(PlayerFactory()).post(f"/api/v1/sessions/{w.joined.uid}/join").status_code == 200


def another_player_is_invited(api, w, clock):
    invite_create(session_id=w.joined.pk, actor=w.host, player_uid=PlayerFactory().uid)


def session_data_changes(api, w, clock):
    assert (
        api.as_(w.host).patch(f"/api/v1/sessions/{w.joined.uid}", {"data": {"x": 1}}, format="json").status_code == 200
    )


def session_starts_closing(api, w, clock):
    assert api.as_(w.host).delete(f"/api/v1/sessions/{w.joined.uid}?closeAfter=600").status_code == 200


def a_closed_session_is_deleted(api, w, clock):
    session_close(session_id=w.open.pk, actor=w.host, close_after=0)  # not in the view
    session_delete(session_id=w.open.pk, actor=w.host)


def time_passes(api, w, clock):
    clock.advance(seconds=30)


NON_CHANGES = [
    sweeper_runs,
    another_player_joins,
    another_player_is_invited,
    session_data_changes,
    session_starts_closing,
    a_closed_session_is_deleted,
    time_passes,
]


@pytest.mark.parametrize("event", NON_CHANGES, ids=[e.__name__ for e in NON_CHANGES])
def test_the_etag_stays_while_nothing_the_view_shows_changes(api, world, clock, event):
    first = view(api, world.player, world.player.uid)

    event(api, world, clock)

    again = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]


@pytest.mark.parametrize(
    "cleanup", ["sweeper", "stale_invite_marked_by_a_new_invite", "session_deleted", "session_closed"]
)
def test_recording_an_expiry_later_keeps_the_etag_it_had(api, world, clock, cleanup):
    """An expiry changes the view when it happens; a write that later records it or deletes
    its row (the sweeper, an invite clearing stale ones, a delete or a close) must not change
    the view again."""
    if cleanup in ("sweeper", "session_deleted"):
        clock.advance(seconds=200)  # the invite and the reservation have expired
        expected = world.reservation_expires
    else:
        clock.advance(seconds=95)  # only the invite has expired
        expected = world.invite_expires
    expired = view(api, world.player, world.player.uid)
    assert expired.json()["lastUpdatedTimestamp"] == iso(expected)

    if cleanup == "sweeper":
        close_due_sessions()
    elif cleanup == "stale_invite_marked_by_a_new_invite":
        invite_create(session_id=world.invited.pk, actor=world.host, player_uid=PlayerFactory().uid)
    elif cleanup == "session_deleted":
        session_delete(session_id=world.reserved.pk, actor=world.host)
    else:
        session_close(session_id=world.invited.pk, actor=world.host, close_after=0)

    again = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=expired["ETag"])
    assert again.status_code == 304


def test_a_session_passing_its_closes_at_changes_the_view_at_that_moment(api, world, clock):
    session_close(session_id=world.joined.pk, actor=world.host, close_after=30)
    closes_at = GameSession.objects.get(pk=world.joined.pk).closes_at
    before = view(api, world.player, world.player.uid)
    assert str(world.joined.uid) in before.json()["sessions"]["ranked"]["sessionIds"]

    clock.advance(seconds=40)
    after = view(api, world.player, world.player.uid)
    close_due_sessions()  # recording the close changes nothing more
    recorded = view(api, world.player, world.player.uid)

    assert after["ETag"] != before["ETag"]
    assert "ranked" not in after.json()["sessions"]
    assert after.json()["lastUpdatedTimestamp"] == iso(closes_at)
    assert recorded["ETag"] == after["ETag"]


def test_a_write_dated_before_the_stamp_still_changes_the_etag(api, world, clock):
    """Writes need not land in time order (another worker's clock, a transaction that began
    earlier): one dated before the stamp leaves lastUpdatedTimestamp where it was, and the view
    it changes must not be answered 304 from the ETag remembered before it."""
    first = view(api, world.player, world.player.uid)
    assert view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    clock.advance(seconds=-60)  # before every write of the world fixture

    assert api.as_(world.player).post(f"/api/v1/sessions/{world.open.uid}/join").status_code == 200
    second = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=first["ETag"])

    assert second.status_code == 200
    assert second.json()["lastUpdatedTimestamp"] == first.json()["lastUpdatedTimestamp"]
    assert str(world.open.uid) in second.json()["sessions"]["ranked"]["sessionIds"]


def test_a_write_landing_while_the_view_is_built_is_not_remembered_as_unchanged(api, world, monkeypatch):
    """The view read before a write commits must not be remembered as current after it."""
    from sessions_app import reads

    entries = reads._entries

    def a_join_lands_after_the_rows_are_read(player_id):
        rows = list(entries(player_id))
        session_join(session_id=world.open.pk, actor=world.player)
        return rows

    with monkeypatch.context() as patched:
        patched.setattr(reads, "_entries", a_join_lands_after_the_rows_are_read)
        stale = reads.player_sessions_view(player_id=world.player.pk, player_uid=world.player.uid)

    again = view(api, world.player, world.player.uid, HTTP_IF_NONE_MATCH=stale.etag)
    assert again.status_code == 200
    assert again["ETag"] != stale.etag
    assert str(world.open.uid) in again.json()["sessions"]["ranked"]["sessionIds"]


def test_if_none_match_takes_a_list_and_weak_forms(api, member):
    etag = view(api, member, member.uid)["ETag"]
    assert view(api, member, member.uid, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert view(api, member, member.uid, HTTP_IF_NONE_MATCH='"other"').status_code == 200


# --- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize("each", [1, 12])
def test_the_view_costs_the_same_queries_however_much_it_shows(
    api, host, member, game_server, make_session, django_assert_num_queries, settings, each
):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0  # the host makes 36 sessions: no quota here
    for _ in range(each):
        session_join(session_id=make_session(host, type="a").pk, actor=member)
        invite_create(session_id=make_session(host, type="b").pk, actor=host, player_uid=member.uid)
        reservation_create(session_id=make_session(host, type="c").pk, actor=host, player_uid=member.uid)
    view(api, member, member.uid)  # loads the caller's permissions once (cached on the object)
    view(api, game_server, member.uid)

    # 1: the stamp row, which remembers the view as the first read built it (nothing has
    # changed since: no write moved its generation, no deadline of its entries has come).
    with django_assert_num_queries(1):
        own = view(api, member, member.uid)
    # The same, after 1: the player's id from its uid.
    with django_assert_num_queries(2):
        other = view(api, game_server, member.uid)

    assert own.json() == other.json()
    group = own.json()["sessions"]
    assert (len(group["a"]["sessionIds"]), len(group["b"]["pendingInvites"]), len(group["c"]["reservedSessions"])) == (
        each,
        each,
        each,
    )


def test_an_unchanged_view_answers_304_from_the_stamp_row_alone(
    api, host, member, game_server, make_session, django_assert_num_queries, clock
):
    session_join(session_id=make_session(host).pk, actor=member)
    expires_at = clock.now + timedelta(seconds=60)
    invite_create(session_id=make_session(host).pk, actor=host, player_uid=member.uid, expires_at=expires_at)
    etag = view(api, member, member.uid)["ETag"]  # built, and remembered on the stamp row
    view(api, game_server, member.uid)  # loads the caller's permissions once (cached on the object)

    # 1: the stamp row: its generation has not moved, no deadline of the view has come and it
    # remembers the ETag asked about. Nothing else is read.
    with django_assert_num_queries(1):
        own = view(api, member, member.uid, HTTP_IF_NONE_MATCH=etag)
    # 1: the player's id from its uid (404 for no such player), 2: its stamp row.
    with django_assert_num_queries(2):
        other = view(api, game_server, member.uid, HTTP_IF_NONE_MATCH=etag)
    assert (own.status_code, own["ETag"], other.status_code, other["ETag"]) == (304, etag, 304, etag)

    clock.advance(seconds=61)  # the invite expires: time alone changes the view
    # 1: the stamp row (the remembered view has passed its deadline), 2: memberships, invites
    # and reservations in one UNION ALL, 3: the UPDATE remembering the view as it now is.
    with django_assert_num_queries(3):
        changed = view(api, member, member.uid, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    # 1: the stamp row, for a 304 and for a 200 alike: the remembered body is the body built.
    with django_assert_num_queries(1):
        assert view(api, member, member.uid, HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 304
    with django_assert_num_queries(1):
        remembered = view(api, member, member.uid)
    assert (remembered.status_code, remembered["ETag"], remembered.content) == (200, changed["ETag"], changed.content)


# --- what the view ignores, and a kick from a reserved place ----------------------------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def test_the_player_view_ignores_another_players_reservation_and_its_expiry(api, member, host, make_session, clock):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    first = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions")

    reservation_create(
        session_id=session.pk, actor=host, player_uid=PlayerFactory().uid, expires_at=clock.now + timedelta(seconds=5)
    )
    during = api.get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])
    clock.advance(seconds=6)
    after = api.get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (during.status_code, after.status_code) == (304, 304)


def test_the_player_view_changes_when_the_player_is_kicked_from_a_reservation(api, member, host, make_session, clock):
    session = make_session(host)
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)
    first = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions")
    assert first.json()["sessions"]["default"]["reservedSessions"] == [str(session.uid)]
    clock.advance(seconds=5)

    kicked = api.as_(host).post(f"{url(session)}/kick", {"player": str(member.uid)}, format="json")
    second = api.as_(member).get(f"/api/v1/players/{member.uid}/sessions", HTTP_IF_NONE_MATCH=first["ETag"])

    assert kicked.status_code == 200
    assert second.status_code == 200
    assert second.json() == {"sessions": {}, "lastUpdatedTimestamp": iso(clock.now)}
