"""GET /sessions and /sessions/count by session data and by the operator form on members
(service-core's `op(value)`), freePlaces and hasPassword, joinable=true, and sorting by
freePlaces and data.<key>. Type-strict on both databases."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from rest_framework.exceptions import ValidationError

from sessions_app.filters import select
from sessions_app.models import GameSession
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.membership import session_join
from sessions_project.errors import InvalidInput
from sessions_project.times import iso

from .factories import PlayerFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

LIST = "/api/v1/sessions"
COUNT = "/api/v1/sessions/count"

# One session per value of data.v: mixed types under the same key, and one without it.
VALUES = {
    "int5": 5,
    "float7": 7.5,
    "int10": 10,
    "neg": -3,
    "str5": "5",
    "strm": "m",
    "strHarbor": "Harbor Town",
    "strz": "zeta",
    "true": True,
    "false": False,
    "null": None,
    "list": [5],
    "object": {"x": 5},
}


@pytest.fixture
def mixed(make_session, host):
    made = {name: make_session(host, data={"v": value, "name": name}) for name, value in VALUES.items()}
    made["missing"] = make_session(host, data={"name": "missing"})
    return made


def names(api, player, **params) -> set[str]:
    response = api.as_(player).get(f"{LIST}?{urlencode({**params, 'limit': 1000})}")
    assert response.status_code == 200, response.json()
    return {s["data"].get("name") for s in response.json()}


CASES = [
    ("5", {"int5"}),
    ("eq(5)", {"int5"}),
    ('eq("5")', {"str5"}),
    ('"5"', {"str5"}),
    ("5.0", {"int5"}),
    ("7.5", {"float7"}),
    ("m", {"strm"}),
    ("true", {"true"}),
    ("false", {"false"}),
    ("null", {"null"}),
    ("eq(null)", {"null"}),
    ("ne(5)", set(VALUES) - {"int5"}),
    ("ne(null)", set(VALUES) - {"null"}),
    ("gt(5)", {"float7", "int10"}),
    ("gte(5)", {"int5", "float7", "int10"}),
    ("lt(5)", {"neg"}),
    ("lte(7.5)", {"int5", "float7", "neg"}),
    ('gt("m")', {"strz"}),
    ('gte("m")', {"strm", "strz"}),
    ("lt(m)", {"str5", "strHarbor"}),
    ("in(5,m,true)", {"int5", "strm", "true"}),
    ('in("5",null)', {"str5", "null"}),
    ("nin(5,m)", set(VALUES) - {"int5", "strm"}),
    ("range(5,10)", {"int5", "float7", "int10"}),
    ("range(a,n)", {"strm", "strHarbor"} - {"strHarbor"}),
    ("range(A,Z)", {"strHarbor"}),
    ("like(harbor)", {"strHarbor"}),
    ("like(ARBOR T)", {"strHarbor"}),
    ("like(5)", {"str5"}),
    ("gt(1e1)", set()),
    ("gte(1e1)", {"int10"}),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_data_operators_compare_values_of_the_same_json_type_only(api, mixed, outsider, value, expected):
    assert names(api, outsider, **{"data.v": value}) == expected


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_the_count_takes_the_same_data_filters(api, mixed, outsider, value, expected):
    response = api.as_(outsider).get(f"{COUNT}?{urlencode({'data.v': value})}")
    assert response.json() == {"count": len(expected)}


def test_a_session_without_the_key_matches_no_filter_on_it(api, mixed, outsider):
    for value in ("ne(5)", "nin(1,2)", "ne(null)", "like()", "gte(-100)"):
        assert "missing" not in names(api, outsider, **{"data.v": value})


def test_several_data_filters_combine_with_and(api, make_session, host, outsider):
    make_session(host, data={"map": "harbor", "skill": 120, "name": "a"})
    make_session(host, data={"map": "harbor", "skill": 200, "name": "b"})
    make_session(host, data={"map": "dunes", "skill": 120, "name": "c"})

    assert names(api, outsider, **{"data.map": "harbor", "data.skill": "range(100,150)"}) == {"a"}


def test_a_quoted_value_may_hold_commas_and_parentheses(api, make_session, host, outsider):
    make_session(host, data={"tag": "a,b", "name": "comma"})
    make_session(host, data={"tag": "x(y)", "name": "paren"})

    assert names(api, outsider, **{"data.tag": 'in("a,b","x(y)")'}) == {"comma", "paren"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("data.v", "between(1,2)"),
        ("data.v", "gt(true)"),
        ("data.v", "range(1,b)"),
        ("data.v", "range(1)"),
        ("data.v", "eq(1,2)"),
        ("data.v", 'eq("open)'),
        ("data.v", "gt(1e999)"),
        ("data.", "1"),
        ("data.a.b", "1"),
        ("data." + "k" * 65, "1"),
        ("numTeams", "gt(x)"),
        ("numTeams", "1.5"),
        ("numTeams", "like(1)"),
        ("dateCreated", "gt(yesterday)"),
        ("dateCreated", "null"),
        ("freePlaces", "gt(null)"),
        ("hasPassword", "yes"),
        ("joinable", "false"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_the_parameter(api, outsider, name, value):
    body = assert_problem(api.as_(outsider).get(f"{LIST}?{urlencode({name: value})}"), 400, "invalid_filter")
    assert body["errors"][0]["field"] == name
    body = assert_problem(api.as_(outsider).get(f"{COUNT}?{urlencode({name: value})}"), 400, "invalid_filter")
    assert body["errors"][0]["field"] == name


def test_an_unknown_operator_like_value_is_refused(api, outsider):
    assert_problem(api.as_(outsider).get(f"{LIST}?data.tag=x(y)"), 400, "invalid_filter")


def test_truncate_honours_the_data_filters(api, truncator, make_session, host):
    make_session(host, data={"map": "harbor"})
    kept = make_session(host, data={"map": "dunes"})

    response = api.as_(truncator).delete(f"{LIST}?data.map=harbor")

    assert response.json() == {"deleted": 1}
    assert [s["uid"] for s in api.as_(truncator).get(LIST).json()] == [str(kept.uid)]


def test_members_take_the_operator_form(api, make_session, host, outsider):
    small = make_session(host, num_teams=2, team_size=2)
    big = make_session(host, num_teams=4, team_size=8)
    api.as_(host).patch(f"{LIST}/{big.uid}", {"name": "renamed"}, format="json")
    middle = big.date_created - timedelta(seconds=10)
    GameSession.objects.filter(pk=small.pk).update(
        date_created=middle - timedelta(seconds=10), date_modified=middle - timedelta(seconds=10)
    )

    def found(**params) -> set[str]:
        return {s["uid"] for s in api.as_(outsider).get(f"{LIST}?{urlencode(params)}").json()}

    assert found(numTeams="gt(2)") == {str(big.uid)}
    assert found(numTeams="in(2,3)") == {str(small.uid)}
    assert found(teamSize="range(1,2)") == {str(small.uid)}
    assert found(version="gte(1)") == {str(big.uid)}
    assert found(version="ne(1)") == {str(small.uid)}
    assert found(dateCreated=f"gt({iso(middle)})") == {str(big.uid)}
    assert found(dateCreated=f"lt({iso(middle)})") == {str(small.uid)}
    assert found(dateCreated=f'range("{iso(middle - timedelta(seconds=30))}",{iso(middle)})') == {str(small.uid)}
    assert found(dateModified=f"gte({iso(middle)})") == {str(big.uid)}
    assert found(closesAt="null") == {str(small.uid), str(big.uid)}
    assert found(closesAt=f"gt({iso(middle)})") == set()


def test_free_places_count_members_and_active_reservations_and_null_is_unlimited(
    api, make_session, host, member, outsider, clock
):
    full = make_session(host, num_teams=1, team_size=2)
    session_join(session_id=full.pk, actor=member)
    reserved = make_session(host, num_teams=2, team_size=2)
    reservation_create(session_id=reserved.pk, actor=host, player_uid=member.uid)
    reservation_create(
        session_id=reserved.pk,
        actor=host,
        player_uid=PlayerFactory().uid,
        expires_at=clock.now + timedelta(seconds=5),
    )
    unlimited = make_session(host)

    def places(**params) -> dict[str, int | None]:
        return {s["uid"]: s["freePlaces"] for s in api.as_(outsider).get(f"{LIST}?{urlencode(params)}").json()}

    assert places() == {str(full.uid): 0, str(reserved.uid): 1, str(unlimited.uid): None}
    assert api.as_(outsider).get(f"{LIST}/{reserved.uid}").json()["freePlaces"] == 1
    clock.advance(seconds=6)  # one reservation expires: its place is free at once
    assert places()[str(reserved.uid)] == 2
    assert set(places(freePlaces="gte(2)")) == {str(reserved.uid), str(unlimited.uid)}
    assert set(places(freePlaces="gt(100)")) == {str(unlimited.uid)}
    assert set(places(freePlaces="lt(100)")) == {str(full.uid), str(reserved.uid)}
    assert set(places(freePlaces="0")) == {str(full.uid)}
    assert set(places(freePlaces="null")) == {str(unlimited.uid)}
    assert set(places(freePlaces="ne(0)")) == {str(reserved.uid), str(unlimited.uid)}
    assert set(places(freePlaces="range(1,5)")) == {str(reserved.uid)}

    order = [s["uid"] for s in api.as_(outsider).get(f"{LIST}?sort={quote(json.dumps({'freePlaces': 'ASC'}))}").json()]
    assert order == [str(full.uid), str(reserved.uid), str(unlimited.uid)]
    order = [s["uid"] for s in api.as_(outsider).get(f"{LIST}?sort={quote(json.dumps({'freePlaces': 'DESC'}))}").json()]
    assert order == [str(unlimited.uid), str(reserved.uid), str(full.uid)]


def test_a_join_on_a_reservation_and_a_kick_keep_free_places(api, make_session, host, member, outsider):
    made = make_session(host, num_teams=1, team_size=4)
    reservation_create(session_id=made.pk, actor=host, player_uid=member.uid)
    assert api.as_(outsider).get(f"{LIST}/{made.uid}").json()["freePlaces"] == 2

    joined = api.as_(member).post(f"{LIST}/{made.uid}/join").json()
    assert joined["freePlaces"] == 2
    reservation_create(session_id=made.pk, actor=host, player_uid=outsider.uid)
    kicked = api.as_(host).post(f"{LIST}/{made.uid}/kick", {"player": str(outsider.uid)}, format="json").json()
    assert kicked["freePlaces"] == 2
    assert api.as_(outsider).get(f"{LIST}?freePlaces=2").json()[0]["uid"] == str(made.uid)


def test_has_password_filters(api, make_session, host, outsider):
    locked = make_session(host, password="s3cret")
    opened = make_session(host)

    assert [s["uid"] for s in api.as_(outsider).get(f"{LIST}?hasPassword=true").json()] == [str(locked.uid)]
    assert [s["uid"] for s in api.as_(outsider).get(f"{LIST}?hasPassword=false").json()] == [str(opened.uid)]


def test_joinable_keeps_the_open_sessions_the_caller_could_join_now(api, make_session, host, member, outsider):
    joinable = make_session(host, num_teams=1, team_size=4)
    full = make_session(host, num_teams=1, team_size=2)
    session_join(session_id=full.pk, actor=member)
    in_progress = make_session(host, status="in_progress")
    mine = make_session(outsider)
    password = make_session(host, password="s3cret")
    invited_password = make_session(host, password="s3cret")
    invite_create(session_id=invited_password.pk, actor=host, player_uid=outsider.uid)
    reserved_full = make_session(host, num_teams=1, team_size=3)
    reservation_create(session_id=reserved_full.pk, actor=host, player_uid=outsider.uid)
    session_join(session_id=reserved_full.pk, actor=member)
    private = make_session(host, visibility="private")

    found = {s["uid"] for s in api.as_(outsider).get(f"{LIST}?joinable=true").json()}

    assert found == {str(joinable.uid), str(invited_password.uid), str(reserved_full.uid)}
    assert api.as_(outsider).get(f"{COUNT}?joinable=true").json() == {"count": 3}
    assert {str(u.uid) for u in (full, in_progress, mine, password, private)}.isdisjoint(found)


def test_sorting_by_data_groups_types_then_orders_values(api, mixed, outsider):
    def order(direction: str) -> list[str]:
        response = api.as_(outsider).get(f"{LIST}?sort={quote(json.dumps({'data.v': direction}))}&limit=1000")
        return [s["data"]["name"] for s in response.json()]

    ascending = order("ASC")
    assert ascending[:4] == ["neg", "int5", "float7", "int10"]
    assert ascending[4:8] == ["str5", "strHarbor", "strm", "strz"]
    assert ascending[8:10] == ["false", "true"]
    assert ascending[10] == "null"
    assert set(ascending[11:13]) == {"list", "object"}
    assert ascending[13] == "missing"
    descending = order("DESC")
    assert descending[:4] == ["int10", "float7", "int5", "neg"]
    assert descending[-1] == "missing"


def test_a_bad_data_sort_key_is_refused(api, outsider):
    assert_problem(api.as_(outsider).get(f"{LIST}?sort={quote(json.dumps({'data.a b': 'ASC'}))}"), 400, "invalid_sort")


def test_the_list_filters_as_a_mapping_select_what_the_list_does(make_session, host, outsider):
    """filters.select: the entry point for the list's filters given as a mapping (quick join)."""
    wanted = make_session(host, type="ranked", num_teams=1, team_size=4, data={"map": "harbor", "skill": 120})
    make_session(host, type="casual", num_teams=1, team_size=4, data={"map": "harbor", "skill": 120})
    make_session(host, type="ranked", num_teams=1, team_size=4, data={"map": "harbor", "skill": 200})
    filters = {"data.map": "harbor", "data.skill": "range(100,150)", "type": "ranked", "freePlaces": "gte(2)"}

    assert list(select(GameSession.objects.all(), filters, actor=outsider)) == [wanted]
    with pytest.raises(InvalidInput) as refused:
        select(GameSession.objects.all(), {"data.skill": "range(1)"}, actor=outsider)
    assert refused.value.code == "invalid_filter"
    assert refused.value.errors[0]["field"] == "data.skill"
    with pytest.raises(ValidationError):
        select(GameSession.objects.all(), {"status": "bogus"}, actor=outsider)
