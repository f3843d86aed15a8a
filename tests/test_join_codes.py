"""Join codes: every session has one (six characters without look-alikes, unique among live
sessions), shown only to its members and session:* accounts; joining by code (any case,
private sessions too, the password still asked for), the wrong-code throttle, and rotation."""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from sessions_app import codes
from sessions_app.event_models import SessionEvent
from sessions_app.models import GameSession, JoinCodeFailure, Membership
from sessions_app.services import join_codes
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update

from .conftest import as_token, row
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

BY_CODE = "/api/v1/sessions/join-by-code"
CODE_SHAPE = re.compile(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}")


def rotate_url(session) -> str:
    return f"/api/v1/sessions/{session.uid}/join-code"


def join_by_code(api, player, code, **body):
    return api.as_(player).post(BY_CODE, {"code": code, **body}, format="json")


def code_of(session) -> str:
    return row(session).join_code


# --- the code and who sees it -----------------------------------------------------------------


def test_every_session_gets_a_code_without_look_alikes(make_session, host):
    made = {make_session(host).join_code for _ in range(20)}

    assert len(made) == 20
    assert all(CODE_SHAPE.fullmatch(code) for code in made)
    assert not set("01OIL") & set(codes.JOIN_CODE_ALPHABET)


def test_the_code_is_shown_to_members_and_session_operators_only(api, session, host, member, outsider, game_server):
    url = f"/api/v1/sessions/{session.uid}"

    assert api.as_(as_token(host)).get(url).json()["joinCode"] == session.join_code
    assert api.as_(as_token(member)).get(url).json()["joinCode"] == session.join_code
    assert api.as_(as_token(game_server)).get(url).json()["joinCode"] == session.join_code
    assert api.as_(as_token(outsider)).get(url).json()["joinCode"] is None


@pytest.mark.parametrize("query", ["", "?type=default"], ids=["prepared-page", "filtered-page"])
def test_a_list_shows_the_code_of_the_callers_own_sessions_only(api, make_session, host, member, query):
    mine = make_session(host)
    theirs = make_session(member)

    page = {doc["uid"]: doc["joinCode"] for doc in api.as_(as_token(host)).get(f"/api/v1/sessions{query}").json()}

    assert page == {str(mine.uid): mine.join_code, str(theirs.uid): None}


def test_the_answer_of_a_join_shows_the_code_and_of_a_leave_does_not(api, make_session, host, member):
    session = make_session(host)

    joined = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join").json()
    left = api.as_(member).post(f"/api/v1/sessions/{session.uid}/leave").json()

    assert joined["joinCode"] == session.join_code
    assert left["joinCode"] is None


def test_two_live_sessions_cannot_share_a_code_but_closed_ones_may(make_session, host):
    first = make_session(host)
    second = make_session(host)

    with pytest.raises(IntegrityError), transaction.atomic():
        GameSession.objects.filter(pk=second.pk).update(join_code=first.join_code)

    session_close(session_id=first.pk, actor=host, close_after=0)
    GameSession.objects.filter(pk=second.pk).update(join_code=first.join_code)
    assert code_of(second) == code_of(first)


def test_a_create_whose_code_is_taken_draws_another(make_session, host, monkeypatch):
    taken = make_session(host).join_code
    drawn = iter([taken, taken, "ZZZZZZ"])
    # (Field.get_default calls the callable its cached `_get_default` holds.)
    monkeypatch.setattr(GameSession._meta.get_field("join_code"), "_get_default", lambda: next(drawn))

    made = make_session(host)

    assert made.join_code == "ZZZZZZ"
    assert GameSession.objects.filter(host=host).count() == 2


def test_the_migration_gives_every_existing_session_a_code_of_its_own(make_session, host):
    sessions = [make_session(host) for _ in range(5)]
    GameSession.objects.update(status="closed")
    GameSession.objects.update(join_code="AAAAAA")  # as the added column left them
    migration = importlib.import_module("sessions_app.migrations.0010_join_codes")

    migration.backfill(apps, None)

    backfilled = [code_of(session) for session in sessions]
    assert len(set(backfilled)) == 5
    assert all(CODE_SHAPE.fullmatch(code) for code in backfilled)


# --- joining by code --------------------------------------------------------------------------


def test_a_code_joins_its_session_in_any_case(api, make_session, host, outsider):
    session = make_session(host)

    response = join_by_code(api, outsider, session.join_code.lower())

    assert response.status_code == 200, response.json()
    assert response.json()["uid"] == str(session.uid)
    assert response.json()["joinCode"] == session.join_code
    assert Membership.objects.filter(session=session, player=outsider).exists()
    assert SessionEvent.objects.filter(session_uid=session.uid, type="member.joined").count() == 1


def test_a_code_opens_a_private_session_but_not_its_password(api, make_session, host, outsider):
    session = make_session(host, visibility="private", password="s3cret")

    assert join_by_code(api, outsider, session.join_code).json()["code"] == "password_required"
    assert join_by_code(api, outsider, session.join_code, password="nope").json()["code"] == "wrong_password"
    response = join_by_code(api, outsider, session.join_code, password="s3cret")

    assert response.status_code == 200
    assert response.json()["visibility"] == "private"


def test_a_code_follows_every_other_rule_of_a_join(api, make_session, host, outsider):
    full = make_session(host, num_teams=1, team_size=1)
    playing = make_session(PlayerFactory())
    session_update(session_id=playing.pk, actor=playing.host, values={"status": "in_progress"})

    assert join_by_code(api, outsider, full.join_code).json()["code"] == "session_full"
    assert join_by_code(api, outsider, playing.join_code).json()["code"] == "not_joinable"
    assert join_by_code(api, outsider, full.join_code, team=3).status_code == 400


@pytest.mark.parametrize("code", ["ZZZZZZ", "abc", "0OIL1Q", "  "])
def test_a_code_that_names_no_live_session_is_404_and_counted(api, outsider, code):
    response = join_by_code(api, outsider, code)

    assert response.status_code == 404
    assert response.json()["code"] == "code_not_found"
    assert JoinCodeFailure.objects.filter(player=outsider).count() == 1


def test_a_closed_or_due_sessions_code_is_404(api, make_session, host, outsider, clock):
    closed = make_session(host)
    session_close(session_id=closed.pk, actor=host, close_after=0)
    due = make_session(host)
    session_close(session_id=due.pk, actor=host, close_after=30)
    clock.advance(seconds=31)

    assert join_by_code(api, outsider, closed.join_code).json()["code"] == "code_not_found"
    assert join_by_code(api, outsider, due.join_code).json()["code"] == "code_not_found"


def test_five_wrong_codes_throttle_every_join_by_code_until_the_window_passes(api, make_session, host, outsider, clock):
    session = make_session(host)
    for _ in range(5):
        assert join_by_code(api, outsider, "ZZZZZZ").status_code == 404
    clock.advance(seconds=20)

    refused = join_by_code(api, outsider, session.join_code)

    assert refused.status_code == 429
    assert refused.json()["code"] == "join_code_throttled"
    assert refused["Retry-After"] == "40"
    assert not Membership.objects.filter(session=session, player=outsider).exists()
    assert JoinCodeFailure.objects.filter(player=outsider).count() == 5  # a refusal is not a failure
    # Another player is not throttled; the window passing lifts it.
    assert join_by_code(api, PlayerFactory(), session.join_code).status_code == 200
    clock.advance(seconds=40)
    assert join_by_code(api, outsider, session.join_code).status_code == 200


def test_a_right_code_is_not_counted(api, make_session, host, outsider):
    session = make_session(host)

    for _ in range(6):
        assert join_by_code(api, outsider, session.join_code).status_code == 200

    assert not JoinCodeFailure.objects.exists()


def test_the_password_travels_in_the_header_too(api, make_session, host, outsider):
    session = make_session(host, password="s3cret")

    response = api.as_(outsider).post(
        BY_CODE, {"code": session.join_code}, format="json", HTTP_X_SESSION_PASSWORD="s3cret"
    )

    assert response.status_code == 200


@pytest.mark.parametrize("body", [{}, {"code": 123456}, {"code": "A" * 65}, {"code": "ABCDEF", "team": -1}])
def test_a_malformed_body_is_400(api, outsider, body):
    response = api.as_(outsider).post(BY_CODE, body, format="json")

    assert response.status_code == 400
    assert not JoinCodeFailure.objects.exists()


# --- rotation ---------------------------------------------------------------------------------


def test_the_host_rotates_the_code_and_the_old_one_stops_working_at_once(api, session, host, outsider):
    old = session.join_code
    before = row(session).version

    response = api.as_(host).post(rotate_url(session))

    assert response.status_code == 200
    new = response.json()["joinCode"]
    assert CODE_SHAPE.fullmatch(new)
    assert new != old
    assert row(session).version == before + 1
    assert join_by_code(api, outsider, old).json()["code"] == "code_not_found"
    assert join_by_code(api, outsider, new).status_code == 200
    event = SessionEvent.objects.filter(session_uid=session.uid, type="session.updated").get()
    assert event.data == {"changes": {"joinCode": None}}
    assert event.version == before + 1


def test_a_code_rotated_between_its_lookup_and_the_join_is_refused(make_session, host, outsider, monkeypatch):
    session = make_session(host)
    original = join_codes._live_session_with_code

    def lookup_then_rotate(code, now):
        found = original(code, now)
        join_codes.session_rotate_join_code(session_id=session.pk, actor=host)
        return found

    monkeypatch.setattr(join_codes, "_live_session_with_code", lookup_then_rotate)

    with pytest.raises(join_codes.NotFound):
        join_codes.session_join_by_code(actor=outsider, code=session.join_code)
    assert not Membership.objects.filter(player=outsider).exists()


def test_only_the_host_or_session_operators_rotate(api, session, member, outsider, game_server, make_session, host):
    assert api.as_(member).post(rotate_url(session)).json()["code"] == "not_host"
    assert api.as_(game_server).post(rotate_url(session)).status_code == 200
    private = make_session(host, visibility="private")
    assert api.as_(outsider).post(rotate_url(private)).json()["code"] == "session_not_found"


def test_a_closed_sessions_code_is_not_rotated(api, make_session, host):
    session = make_session(host)
    session_close(session_id=session.pk, actor=host, close_after=0)

    response = api.as_(host).post(rotate_url(session))

    assert response.status_code == 409
    assert response.json()["code"] == "session_closed"


def test_a_member_reads_the_new_code_with_a_new_etag(api, session, host, member):
    url = f"/api/v1/sessions/{session.uid}"
    etag = api.as_(member).get(url)["ETag"]

    new = api.as_(host).post(rotate_url(session)).json()["joinCode"]

    response = api.as_(member).get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["joinCode"] == new


def test_a_join_by_code_service_call_joins_like_the_api(make_session, host, outsider):
    session = make_session(host)
    session_join(session_id=session.pk, actor=PlayerFactory())

    joined = join_codes.session_join_by_code(actor=outsider, code=f" {session.join_code.lower()} ")

    assert joined.pk == session.pk
    assert row(session).users_doc[-1] == str(outsider.uid)
