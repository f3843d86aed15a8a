"""Quick join: the best matching session the caller may join now (fewest free places first,
sessions without a capacity last, the oldest among equals), never one with a password, the
matching live session the caller is in already, or the session `create` describes; 404
`no_match` without it. Every rule and event of an ordinary join and create applies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions_app.event_models import SessionEvent
from sessions_app.models import GameSession, JoinPasswordFailure, Membership
from sessions_app.services import matchmaking
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.lifecycle import session_close
from sessions_app.services.matchmaking import matching_sessions
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update

from .conftest import row
from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sessions/quick-join"
HARBOR = {"data.map": "harbor"}


def quick_join(api, player, body):
    return api.as_(player).post(URL, body, format="json")


def game(make_session, *, data=None, players=0, **values):
    """A session of a fresh host (with `players` more members) whose data is `data`."""
    session = make_session(PlayerFactory(), data={"map": "harbor"} if data is None else data, **values)
    for _ in range(players):
        session_join(session_id=session.pk, actor=PlayerFactory())
    return row(session)


def test_it_joins_the_matching_session_with_the_fewest_free_places(api, make_session, outsider):
    game(make_session, num_teams=2, team_size=4)  # 7 free
    fuller = game(make_session, num_teams=2, team_size=4, players=4)  # 2 free
    game(make_session, data={"map": "dust"}, num_teams=1, team_size=2)  # 1 free, but not harbor

    response = quick_join(api, outsider, {"filters": HARBOR})

    assert response.status_code == 200, response.json()
    assert response.json()["uid"] == str(fuller.uid)
    assert str(outsider.uid) in response.json()["users"]
    assert response.json()["version"] == fuller.version + 1
    assert Membership.objects.filter(session=fuller, player=outsider).exists()


def test_sessions_without_a_capacity_come_last_and_the_oldest_wins_among_equals(api, make_session, outsider):
    unlimited = game(make_session)
    older = game(make_session, num_teams=1, team_size=3)
    game(make_session, num_teams=1, team_size=3)  # as many free places, made later

    assert quick_join(api, outsider, {"filters": HARBOR}).json()["uid"] == str(older.uid)
    # Once the capped ones are full (or joined), the unlimited one is taken.
    other = PlayerFactory()
    GameSession.objects.exclude(pk=unlimited.pk).update(status="in_progress")
    assert quick_join(api, other, {"filters": HARBOR}).json()["uid"] == str(unlimited.uid)


def test_it_never_chooses_a_session_with_a_password_a_full_one_or_one_that_is_not_open(
    api, make_session, outsider, clock
):
    game(make_session, password="s3cret", num_teams=1, team_size=3)
    game(make_session, num_teams=1, team_size=1)  # full: its host holds the place
    in_progress = game(make_session)
    session_update(session_id=in_progress.pk, actor=in_progress.host, values={"status": "in_progress"})
    closing = game(make_session)
    session_close(session_id=closing.pk, actor=closing.host, close_after=60)
    due = game(make_session, num_teams=1, team_size=5)
    GameSession.objects.filter(pk=due.pk).update(closes_at=clock.now - timedelta(seconds=1))

    response = quick_join(api, outsider, {"filters": HARBOR})

    assert response.status_code == 404
    assert response.json()["code"] == "no_match"
    assert not Membership.objects.filter(player=outsider).exists()


def test_reserved_places_count_against_capacity_except_the_callers_own(api, make_session, outsider):
    held = game(make_session, num_teams=1, team_size=2)
    reservation_create(session_id=held.pk, actor=held.host, player_uid=PlayerFactory().uid)
    mine = game(make_session, num_teams=1, team_size=2)
    reservation_create(session_id=mine.pk, actor=mine.host, player_uid=outsider.uid)

    response = quick_join(api, PlayerFactory(), {"filters": HARBOR})
    assert response.status_code == 404  # both full: a member and a reservation each

    response = quick_join(api, outsider, {"filters": HARBOR})
    assert response.status_code == 200
    assert response.json()["uid"] == str(mine.uid)


def test_a_private_session_is_chosen_only_by_a_caller_invited_to_it(api, make_session, outsider):
    private = game(make_session, visibility="private")

    assert quick_join(api, outsider, {"filters": HARBOR}).status_code == 404

    invite_create(session_id=private.pk, actor=private.host, player_uid=outsider.uid)
    response = quick_join(api, outsider, {"filters": HARBOR})
    assert response.status_code == 200
    assert response.json()["uid"] == str(private.uid)
    assert response.json()["invited"] == []  # the invite is accepted, as by an ordinary join


def test_a_caller_in_a_matching_live_session_gets_that_one_back(api, make_session, outsider):
    playing = game(make_session)
    session_join(session_id=playing.pk, actor=outsider)
    session_update(session_id=playing.pk, actor=playing.host, values={"status": "in_progress"})
    game(make_session, num_teams=1, team_size=2)  # open, with room: a join would take it
    before = row(playing).version

    response = quick_join(api, outsider, {"filters": HARBOR, "create": {"data": {"map": "harbor"}}})

    assert response.status_code == 200
    assert response.json()["uid"] == str(playing.uid)
    assert response.json()["version"] == before
    assert Membership.objects.filter(player=outsider).count() == 1


def test_without_a_match_it_creates_the_session_with_the_caller_as_host_and_member(api, outsider):
    body = {"filters": HARBOR, "create": {"numTeams": 2, "teamSize": 2, "data": {"map": "harbor"}}}

    response = quick_join(api, outsider, body)

    assert response.status_code == 201, response.json()
    document = response.json()
    assert document["hostUid"] == str(outsider.uid)
    assert document["users"] == [str(outsider.uid)]
    assert document["data"] == {"map": "harbor"}
    assert document["joinCode"] == GameSession.objects.get(uid=document["uid"]).join_code
    assert list(SessionEvent.objects.filter(session_uid=document["uid"]).values_list("type", flat=True)) == [
        "session.created"
    ]
    # The next one finds it.
    assert quick_join(api, PlayerFactory(), body).json()["uid"] == document["uid"]


def test_without_a_match_and_nothing_to_create_it_is_404(api, outsider):
    response = quick_join(api, outsider, {"filters": HARBOR})

    assert response.status_code == 404
    assert response.json()["code"] == "no_match"


def test_a_team_asked_for_is_one_with_room_and_the_caller_lands_in_it(api, make_session, outsider):
    one_team = game(make_session, num_teams=1, team_size=4)
    first_full = game(make_session, num_teams=2, team_size=1)  # team 0 holds the host, team 1 is free
    session_join(session_id=first_full.pk, actor=PlayerFactory())  # now team 1 is full too
    room = game(make_session, num_teams=2, team_size=2)

    response = quick_join(api, outsider, {"filters": HARBOR, "team": 1})

    assert response.status_code == 200
    assert response.json()["uid"] == str(room.uid)
    assert response.json()["teams"][1]["players"] == [str(outsider.uid)]
    assert one_team.pk != room.pk


def test_a_created_session_puts_its_creator_in_the_team_asked_for(api, outsider):
    body = {"filters": HARBOR, "team": 1, "create": {"numTeams": 2, "teamSize": 2, "data": {"map": "harbor"}}}

    response = quick_join(api, outsider, body)

    assert response.status_code == 201
    assert response.json()["teams"][1]["players"] == [str(outsider.uid)]
    bad = quick_join(api, PlayerFactory(), {**body, "filters": {"data.map": "dust"}, "team": 5})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "team"


def test_a_quick_join_records_what_an_ordinary_join_records(api, make_session, outsider):
    session = game(make_session)

    quick_join(api, outsider, {"filters": HARBOR})

    joined = SessionEvent.objects.filter(session_uid=session.uid).order_by("-id").first()
    assert joined.type == "member.joined"
    assert joined.data == {"playerUid": str(outsider.uid), "team": None}
    assert joined.version == row(session).version


def test_the_lists_filters_narrow_the_choice(api, make_session, outsider):
    game(make_session, type="casual")
    ranked = game(make_session, type="ranked")

    response = quick_join(api, outsider, {"filters": {**HARBOR, "type": "ranked", "status": "open", "search": ""}})

    assert response.json()["uid"] == str(ranked.uid)


@pytest.mark.parametrize(
    ("filter_value", "matches"),
    [("5", "number"), ("5.0", "number"), ('"5"', "string"), ("five", "word"), ("true", "flag"), ("null", None)],
)
def test_a_data_filter_compares_numbers_with_numbers_and_strings_with_strings(
    make_session, host, filter_value, matches
):
    made = {
        "number": game(make_session, data={"level": 5}),
        "string": game(make_session, data={"level": "5"}),
        "word": game(make_session, data={"level": "five"}),
        "flag": game(make_session, data={"level": True}),
        "missing": game(make_session, data={}),
    }

    found = set(
        matching_sessions(GameSession.objects.all(), {"data.level": filter_value}, host).values_list("pk", flat=True)
    )

    assert found == ({made[matches].pk} if matches else set())


def test_a_number_in_data_never_matches_a_boolean_or_a_string_of_its_digits(make_session, host):
    number = game(make_session, data={"level": 1})
    game(make_session, data={"level": True})
    game(make_session, data={"level": "1"})

    found = list(matching_sessions(GameSession.objects.all(), {"data.level": "1"}, host).values_list("pk", flat=True))

    assert found == [number.pk]


@pytest.mark.parametrize(
    ("filters", "field", "code"),
    [
        ({"nope": "1"}, "filters.nope", "unknown_filter"),
        ({"data.a b": "1"}, "filters.data.a b", "unknown_filter"),
        ({"status": "sleeping"}, "filters.status", "invalid_choice"),
        ({"highlight": "yes"}, "filters.highlight", "invalid"),
        ({"data.map": 5}, "filters.data.map", "invalid"),
        ({"sort": '{"uid":"ASC"}'}, "filters.sort", "unknown_filter"),
    ],
)
def test_a_malformed_filter_is_400_naming_it(api, outsider, filters, field, code):
    response = quick_join(api, outsider, {"filters": filters})

    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert response.json()["errors"][0]["code"] == code


def test_a_malformed_create_body_is_400_before_anything_is_joined(api, make_session, outsider):
    game(make_session)

    response = quick_join(api, outsider, {"filters": HARBOR, "create": {"numTeams": "two"}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "create.numTeams"
    assert not Membership.objects.filter(player=outsider).exists()


def test_creating_for_someone_else_is_403_as_on_create(api, outsider, member):
    response = quick_join(api, outsider, {"filters": HARBOR, "create": {"hostUid": str(member.uid)}})

    assert response.status_code == 403
    assert response.json()["code"] == "host_forbidden"


def test_the_created_session_counts_towards_the_hosts_quota(api, outsider, settings):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 1
    quick_join(api, outsider, {"filters": {"data.map": "a"}, "create": {"data": {"map": "a"}}})

    response = quick_join(api, outsider, {"filters": {"data.map": "b"}, "create": {"data": {"map": "b"}}})

    assert response.status_code == 409
    assert response.json()["code"] == "quota_exceeded"


def test_a_session_given_a_password_after_it_was_chosen_is_passed_over_without_a_failure(
    make_session, outsider, monkeypatch
):
    guarded = game(make_session, num_teams=1, team_size=3)
    open_one = game(make_session)
    original = matchmaking._candidates

    def candidates_then_password(*args, **kwargs):
        found = original(*args, **kwargs)
        # The password arrives between the choice and the join's lock.
        session_update(session_id=guarded.pk, actor=guarded.host, values={"password": "s3cret"})
        return found

    monkeypatch.setattr(matchmaking, "_candidates", candidates_then_password)

    session, created = matchmaking.session_quick_join(actor=outsider, filters=HARBOR)

    assert (session.pk, created) == (open_one.pk, False)
    assert not JoinPasswordFailure.objects.exists()


def test_an_empty_filter_set_matches_every_session_the_caller_may_join(api, make_session, outsider):
    session = game(make_session, data={"anything": 1})

    response = quick_join(api, outsider, {})

    assert response.status_code == 200
    assert response.json()["uid"] == str(session.uid)


@pytest.mark.parametrize("value", ["[" * 5000, "1" * 5000, "1e999", "-0", "0x10"])
def test_any_text_as_a_data_value_matches_or_not_or_is_refused_naming_it_never_a_server_error(
    api, make_session, outsider, value
):
    game(make_session, data={"x": 1})

    response = quick_join(api, outsider, {"filters": {"data.x": value}})

    # A number beyond what the search reads (5000 digits, 1e999) is refused as the list
    # refuses it; anything else is a value that matches or not.
    if response.status_code == 400:
        assert response.json()["errors"][0]["field"] == "filters.data.x"
    else:
        assert (response.status_code, response.json()["code"]) == (404, "no_match")
