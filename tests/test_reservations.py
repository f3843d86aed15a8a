"""Reservations end to end: a held place counts against capacity for everyone else, its player
joins into it without a password, it frees itself on expiry with no job run, and it never
touches the session document or its version."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions_app.models import GameSession, Membership, Reservation
from sessions_app.services.invites import reservation_create
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join
from sessions_project.times import iso

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


def reserve(api, actor, session, player, **body):
    return api.as_(actor).post(
        f"/api/v1/sessions/{session.uid}/reservations", {"player": str(player.uid), **body}, format="json"
    )


def join(api, player, session, **body):
    return api.as_(player).post(f"/api/v1/sessions/{session.uid}/join", body, format="json")


def test_host_reserves_a_place_and_only_free_places_change(api, host, member, make_session, clock, settings):
    settings.RESERVATION_TTL = 300
    session = make_session(host, num_teams=1, team_size=4)
    before = api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    response = reserve(api, host, session, member)

    assert response.status_code == 201, response.json()
    row = Reservation.objects.get()
    assert response.json() == {
        "id": row.pk,
        "session": str(session.uid),
        "player": str(member.uid),
        "expiresAt": iso(clock.now + timedelta(seconds=300)),
        "dateCreated": iso(clock.now),
    }
    assert row.created_by_id == host.pk
    after = api.as_(host).get(f"/api/v1/sessions/{session.uid}")
    # The reserved place is no longer free; nothing else of the document changes, nor its version.
    assert after.json() == {**before.json(), "freePlaces": before.json()["freePlaces"] - 1}
    assert after["ETag"] == before["ETag"]


def test_a_game_server_reserves_with_its_own_expiry(api, host, member, game_server, make_session, clock):
    session = make_session(host)
    expires = clock.now + timedelta(seconds=42)
    response = reserve(api, game_server, session, member, expiresAt=iso(expires))
    assert response.status_code == 201
    assert response.json()["expiresAt"] == iso(expires)


def test_the_reserved_player_may_read_a_private_session(api, host, member, make_session, clock):
    session = make_session(host, visibility="private")
    reserve(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=60)))
    assert api.as_(member).get(f"/api/v1/sessions/{session.uid}").status_code == 200
    clock.advance(seconds=61)
    assert api.as_(member).get(f"/api/v1/sessions/{session.uid}").status_code == 404


def test_a_reserved_place_is_kept_from_everyone_else(api, host, member, outsider, make_session):
    session = make_session(host, num_teams=1, team_size=2)
    reserve(api, host, session, member)
    version = GameSession.objects.get(pk=session.pk).version

    refused = join(api, outsider, session)
    taken = join(api, member, session)

    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    assert taken.status_code == 200, taken.json()
    assert taken.json()["users"] == [str(host.uid), str(member.uid)]
    assert taken.json()["version"] == version + 1
    assert not Reservation.objects.exists()  # used up


def test_the_reserved_player_joins_without_the_password(api, host, member, make_session):
    session = make_session(host, password="s3cret")
    reserve(api, host, session, member)
    response = join(api, member, session)
    assert response.status_code == 200, response.json()


def test_a_reserved_player_asking_for_a_full_team_gets_409(api, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=1)  # the host fills team 0
    reserve(api, host, session, member)

    full_team = join(api, member, session, team=0)
    other_team = join(api, member, session, team=1)

    assert (full_team.status_code, full_team.json()["code"]) == (409, "team_full")
    assert other_team.status_code == 200


def test_an_expired_reservation_frees_its_place_without_any_job(api, host, member, outsider, make_session, clock):
    session = make_session(host, num_teams=1, team_size=2)
    reserve(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=30)))
    assert join(api, outsider, session).status_code == 409

    clock.advance(seconds=31)

    assert join(api, outsider, session).status_code == 200
    assert Reservation.objects.count() == 1  # still there: nothing swept it, and nothing needed to


def test_reservation_refusals(api, host, member, outsider, make_session, clock):
    session = make_session(host, num_teams=1, team_size=3)
    session_join(session_id=session.pk, actor=member)
    third = PlayerFactory()
    assert reserve(api, host, session, third).status_code == 201

    for_member = reserve(api, host, session, member)
    second = reserve(api, host, session, third)
    full = reserve(api, host, session, outsider)
    by_member = reserve(api, member, session, outsider)
    unknown = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/reservations",
        {"player": "00000000-0000-4000-8000-000000000000"},
        format="json",
    )
    past = reserve(api, host, session, outsider, expiresAt=iso(clock.now - timedelta(seconds=1)))

    assert (for_member.status_code, for_member.json()["code"]) == (409, "already_member")
    assert (second.status_code, second.json()["code"]) == (409, "already_reserved")
    assert (full.status_code, full.json()["code"]) == (409, "session_full")
    assert (by_member.status_code, by_member.json()["code"]) == (403, "not_host")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_player")
    assert (past.status_code, past.json()["errors"][0]["field"]) == (400, "expiresAt")
    assert Reservation.objects.count() == 1


def test_no_reservation_in_a_closing_or_closed_session(api, host, member, make_session):
    closing = make_session(host)
    session_close(session_id=closing.pk, actor=host, close_after=60)
    closed = make_session(host)
    session_close(session_id=closed.pk, actor=host, close_after=0)

    for session, status in ((closing, "closing"), (closed, "closed")):
        response = reserve(api, host, session, member)
        assert (response.status_code, response.json()["code"], response.json()["sessionStatus"]) == (
            409,
            "not_joinable",
            status,
        )


def test_an_outsider_gets_404_for_a_private_session(api, host, member, outsider, make_session):
    session = make_session(host, visibility="private")
    response = reserve(api, outsider, session, member)
    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")


def test_after_expiry_the_player_may_be_reserved_again(api, host, member, make_session, clock):
    session = make_session(host)
    reserve(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=10)))
    clock.advance(seconds=11)

    again = reserve(api, host, session, member)

    assert again.status_code == 201
    assert list(Reservation.objects.values_list("pk", flat=True)) == [again.json()["id"]]


# --- listing and cancelling -------------------------------------------------------------------


def test_listing_shows_active_reservations_to_the_host_and_its_own_to_a_player(
    api, host, member, outsider, make_session, clock, django_assert_num_queries
):
    session = make_session(host)
    players = [PlayerFactory() for _ in range(6)]
    for player in players:
        reserve(api, host, session, player)
    reserve(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=5)))
    clock.advance(seconds=6)  # member's has expired

    api.as_(host)
    # 1: the session (visibility), 2: its active reservations with session and player.
    with django_assert_num_queries(2):
        everyone = api.get(f"/api/v1/sessions/{session.uid}/reservations")
    own = api.as_(players[2]).get(f"/api/v1/sessions/{session.uid}/reservations")
    none = api.as_(outsider).get(f"/api/v1/sessions/{session.uid}/reservations")

    assert [r["player"] for r in everyone.json()] == [str(p.uid) for p in players]
    assert [r["player"] for r in own.json()] == [str(players[2].uid)]
    assert none.json() == []


@pytest.mark.parametrize("canceller", ["host", "member", "game_server"])
def test_the_host_a_game_server_or_the_player_cancels(api, host, member, game_server, make_session, canceller):
    session = make_session(host, num_teams=1, team_size=2)
    reservation_id = reserve(api, host, session, member).json()["id"]
    version = GameSession.objects.get(pk=session.pk).version
    actor = {"host": host, "member": member, "game_server": game_server}[canceller]

    response = api.as_(actor).delete(f"/api/v1/sessions/{session.uid}/reservations/{reservation_id}")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == reservation_id
    assert response.json()["player"] == str(member.uid)
    assert not Reservation.objects.exists()
    assert GameSession.objects.get(pk=session.pk).version == version
    assert join(api, PlayerFactory(), session).status_code == 200  # the place is free again


def test_cancel_refusals(api, host, member, outsider, make_session, clock):
    session = make_session(host)
    session_join(session_id=session.pk, actor=outsider)
    reservation_id = reserve(api, host, session, member, expiresAt=iso(clock.now + timedelta(seconds=30))).json()["id"]
    url = f"/api/v1/sessions/{session.uid}/reservations"

    by_other = api.as_(outsider).delete(f"{url}/{reservation_id}")
    malformed = api.as_(host).delete(f"{url}/abc")
    unknown = api.as_(host).delete(f"{url}/999999")
    clock.advance(seconds=31)
    expired = api.as_(host).delete(f"{url}/{reservation_id}")

    assert (by_other.status_code, by_other.json()["code"]) == (403, "not_host")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_id")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "reservation_not_found")
    assert (expired.status_code, expired.json()["code"]) == (404, "reservation_not_found")


def test_a_reservation_of_another_session_is_not_found_here(api, host, member, make_session):
    session, other = make_session(host), make_session(host)
    reservation_id = reserve(api, host, other, member).json()["id"]
    response = api.as_(host).delete(f"/api/v1/sessions/{session.uid}/reservations/{reservation_id}")
    assert response.status_code == 404
    assert Membership.objects.filter(player=member).count() == 0
    assert Reservation.objects.count() == 1


# --- the reservation TTL, sight of a private session, and the reserved place ------------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def listed(api, player) -> list[str]:
    response = api.as_(player).get("/api/v1/sessions")
    assert response.status_code == 200
    return [s["uid"] for s in response.json()]


def test_the_default_expiry_comes_from_the_reservation_ttl_setting(api, host, member, make_session, clock, settings):
    settings.RESERVATION_TTL = 42
    session = make_session(host)

    response = api.as_(host).post(f"{url(session)}/reservations", {"player": str(member.uid)}, format="json")

    assert response.status_code == 201
    assert response.json()["expiresAt"] == iso(clock.now + timedelta(seconds=42))
    # Stored to the millisecond, as the session's reservations_doc writes it.
    expected = clock.now + timedelta(seconds=42)
    assert Reservation.objects.get().expires_at == expected.replace(microsecond=expected.microsecond // 1000 * 1000)


def test_a_reservation_and_its_place_expire_at_the_same_instant(api, host, member, make_session, clock):
    """The row (what a join and the sweeper read) and the session's reservations_doc (what
    freePlaces and a join's capacity count read) agree to the microsecond."""
    session = make_session(host, num_teams=1, team_size=2)
    expires_at = "2099-01-01T00:00:00.123456Z"

    response = api.as_(host).post(
        f"{url(session)}/reservations", {"player": str(member.uid), "expiresAt": expires_at}, format="json"
    )

    assert response.status_code == 201, response.json()
    stored = Reservation.objects.get().expires_at
    assert stored.microsecond == 123000
    session.refresh_from_db()
    assert session.reservations_doc == [{"uid": str(member.uid), "expiresAt": iso(stored)}]


def test_the_reservation_ttl_defaults_to_five_minutes():
    from sessions_project import settings as production

    assert production.RESERVATION_TTL == 300


def test_a_reservation_shows_a_private_session_in_the_list_until_it_expires(api, host, member, make_session, clock):
    session = make_session(host, visibility="private")
    reservation_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=30)
    )

    before = listed(api, member)
    counted = api.get("/api/v1/sessions/count").json()
    clock.advance(seconds=31)
    after = listed(api, member)

    assert str(session.uid) in before
    assert counted == {"count": 1}
    assert str(session.uid) not in after


def test_a_reservation_expiring_moves_neither_version_nor_etag(api, host, member, outsider, make_session, clock):
    session = make_session(host, num_teams=1, team_size=2)
    reservation_create(
        session_id=session.pk, actor=host, player_uid=member.uid, expires_at=clock.now + timedelta(seconds=30)
    )
    before = api.as_(host).get(url(session))

    clock.advance(seconds=31)
    after = api.get(url(session), HTTP_IF_NONE_MATCH=before["ETag"])
    joined = api.as_(outsider).post(f"{url(session)}/join")

    assert after.status_code == 304
    assert joined.status_code == 200  # the place is free
    assert joined.json()["version"] == before.json()["version"] + 1


def test_a_reserved_player_joins_a_session_with_every_other_place_taken(api, host, member, make_session):
    # Two places: the host's and member's reserved one; a third player is refused, and
    # member, not naming a team, still gets in.
    session = make_session(host, num_teams=2, team_size=1, password="s3cret")
    reservation_create(session_id=session.pk, actor=host, player_uid=member.uid)

    refused = api.as_(PlayerFactory()).post(f"{url(session)}/join", {"password": "s3cret"}, format="json")
    joined = api.as_(member).post(f"{url(session)}/join")

    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    assert joined.status_code == 200, joined.json()
    assert [t["players"] for t in joined.json()["teams"]] == [[str(host.uid)], [str(member.uid)]]
    assert not Reservation.objects.exists()
