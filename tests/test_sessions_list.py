"""GET /sessions and /sessions/count: who sees what, limit/skip/sort, filters, and the query
budget of the list and of GET /sessions/{uid} (benchmarked: no per-row query, no COUNT)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import AccessToken

from players_app.authentication import player_claims
from sessions_app.filters import SORTABLE
from sessions_app.models import GameSession, Membership, SessionStatus
from sessions_app.services.lifecycle import session_close
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/sessions"
COUNT = "/api/v1/sessions/count"


def uids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [s["uid"] for s in response.json()]


def sort(spec: dict) -> str:
    return quote(json.dumps(spec))


def with_token(api, player):
    """Authenticate with a real access token: the caller is then read from the token, as in
    production, so the query counts below are exactly what a request pays."""
    token = AccessToken.for_user(player)
    for key, value in player_claims(player).items():
        token[key] = value
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token}")
    return api


@pytest.fixture
def invitee(db):
    return PlayerFactory(username="invitee")


@pytest.fixture
def roster(clock, host, member, invitee, game_server, make_session):
    """One session per way of being seen, created a second apart (newest last)."""
    sessions = {}
    sessions["public"] = make_session(host)
    clock.advance(seconds=1)
    sessions["hosted"] = make_session(host, visibility="private")
    clock.advance(seconds=1)
    sessions["member_of"] = make_session(game_server, host_uid=None, users=[str(member.uid)], visibility="private")
    clock.advance(seconds=1)
    sessions["invited_to"] = make_session(host, visibility="private", invited=[str(invitee.uid)])
    clock.advance(seconds=1)
    sessions["nobody"] = make_session(game_server, host_uid=None, users=[], visibility="private")
    clock.advance(seconds=1)
    return {name: str(s.uid) for name, s in sessions.items()}


# --- visibility per persona -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("outsider", ["public"]),
        ("staff", ["public"]),
        ("host", ["invited_to", "hosted", "public"]),
        ("member", ["member_of", "public"]),
        ("invitee", ["invited_to", "public"]),
        ("game_server", ["nobody", "invited_to", "member_of", "hosted", "public"]),
    ],
)
def test_each_persona_sees_public_sessions_and_its_own_private_ones(api, roster, request, persona, expected):
    player = request.getfixturevalue(persona)

    listed = api.as_(player).get(LIST)
    counted = api.get(COUNT)

    assert uids(listed) == [roster[name] for name in expected]  # newest first
    assert counted.json() == {"count": len(expected)}


def test_a_player_who_left_a_private_session_no_longer_sees_it(api, roster, member):
    api.as_(member).post(f"{LIST}/{roster['member_of']}/leave")

    assert roster["member_of"] not in uids(api.get(LIST))
    assert api.get(f"{LIST}/{roster['member_of']}").status_code == 404


def test_the_list_is_a_plain_array_of_documents_without_passwords(api, host, make_session):
    make_session(host, password="pw", data={"k": "v"})

    body = api.as_(host).get(LIST).json()

    assert isinstance(body, list)
    assert body[0]["hasPassword"] is True
    assert body[0]["data"] == {"k": "v"}
    assert body[0]["users"] == [str(host.uid)]
    assert "password" not in body[0]


def test_the_list_shows_the_status_as_of_now(api, host, make_session, clock):
    session = make_session(host)
    api.as_(host).delete(f"{LIST}/{session.uid}?closeAfter=10")
    clock.advance(seconds=11)

    assert api.get(LIST).json()[0]["status"] == "closed"
    assert api.get(f"{LIST}?status=closed").json()[0]["uid"] == str(session.uid)
    assert api.get(f"{LIST}?status=closing").json() == []


# --- limit and skip -------------------------------------------------------------------------


def bulk_sessions(n: int, **fields) -> list[GameSession]:
    """Rows without the services, for volume: public, no members."""
    return GameSession.objects.bulk_create([GameSession(**fields) for _ in range(n)])


def test_limit_defaults_to_100_and_goes_up_to_1000(api, host):
    bulk_sessions(1001)
    api.as_(host)

    assert len(api.get(LIST).json()) == 100
    assert len(api.get(f"{LIST}?limit=1000").json()) == 1000
    assert len(api.get(f"{LIST}?limit=1").json()) == 1


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=1.5", "limit=1e3", "skip=-1", "skip=abc", "skip=2.0"],
)
def test_bad_limit_or_skip_is_400(api, host, query):
    response = api.as_(host).get(f"{LIST}?{query}")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == query.split("=")[0]


def test_skip_pages_without_overlap_even_when_every_session_was_created_at_once(api, host, clock):
    # One frozen instant: only the uid tie-break orders these.
    sessions = bulk_sessions(7, date_created=clock.now)
    api.as_(host)

    pages = [uids(api.get(f"{LIST}?limit=3&skip={skip}")) for skip in (0, 3, 6)]

    flat = [uid for page in pages for uid in page]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert flat == sorted(str(s.uid) for s in sessions)


@pytest.mark.parametrize("skip", [5, 10**17])
def test_skip_past_the_end_is_an_empty_array(api, host, make_session, skip):
    make_session(host)

    assert api.as_(host).get(f"{LIST}?skip={skip}").json() == []


# --- sort -----------------------------------------------------------------------------------


def test_without_sort_the_newest_come_first(api, roster, game_server):
    expected = ["nobody", "invited_to", "member_of", "hosted", "public"]

    assert uids(api.as_(game_server).get(LIST)) == [roster[n] for n in expected]


def test_sort_ascending_by_date_created(api, roster, game_server):
    expected = ["public", "hosted", "member_of", "invited_to", "nobody"]

    response = api.as_(game_server).get(f"{LIST}?sort={sort({'dateCreated': 'ASC'})}")

    assert uids(response) == [roster[n] for n in expected]


def test_sort_by_several_keys_in_order_then_uid(api, game_server, clock, make_session):
    a = make_session(game_server, num_teams=2)
    clock.advance(seconds=1)
    b = make_session(game_server, num_teams=1)
    clock.advance(seconds=1)
    c = make_session(game_server, num_teams=2)
    same = sorted([make_session(game_server, num_teams=1), make_session(game_server, num_teams=1)], key=lambda s: s.uid)
    api.as_(game_server)

    response = api.get(f"{LIST}?sort={sort({'numTeams': 'DESC', 'dateCreated': 'ASC'})}")

    # numTeams 2 first (a then c by date), then numTeams 1: b, then the two created at the
    # same instant by uid.
    assert uids(response) == [str(s.uid) for s in (a, c, b, *same)]


def test_sort_by_uid_descending(api, game_server, make_session):
    sessions = [make_session(game_server) for _ in range(4)]

    response = api.as_(game_server).get(f"{LIST}?sort={sort({'uid': 'desc'})}")

    assert uids(response) == sorted((str(s.uid) for s in sessions), reverse=True)


@pytest.mark.parametrize(
    ("member", "field"),
    [
        ("version", "version"),
        ("dateModified", "date_modified"),
        ("status", "status"),
        ("visibility", "visibility"),
        ("teamSize", "team_size"),
    ],
)
def test_every_sortable_member_sorts(api, game_server, make_session, member, field):
    make_session(game_server, status="in_progress", team_size=3, visibility="private")
    other = make_session(game_server, team_size=1)
    api.as_(game_server).patch(f"{LIST}/{other.uid}", {"data": {"x": 1}}, format="json")

    ascending = api.get(f"{LIST}?sort={sort({member: 'ASC'})}").json()
    descending = api.get(f"{LIST}?sort={sort({member: 'DESC'})}").json()

    values = [row[member] for row in ascending]
    assert values == sorted(values)
    assert [row[member] for row in descending] == sorted(values, reverse=True)
    assert values[0] != values[1]  # the two sessions differ in this member: the order is real


# Near-unique columns: one index scanned either way, an incremental sort orders the rare ties.
NEAR_UNIQUE_SORTS = {"date_created", "date_modified"}


# status sorts the status as of now, which no index can hold; uid has its unique index.
STORED_SORTS = sorted(member for member, field in SORTABLE.items() if field not in ("status_now", "uid"))


@pytest.mark.parametrize("member", STORED_SORTS)
def test_every_stored_sortable_member_has_an_index_in_the_list_order(member):
    """Page 1 by any stored member is an index scan under the LIMIT, not a sort of the table:
    an index leads with the column then uid, in the order parse_sort asks for (uid always ASC)."""
    field = SORTABLE[member]
    column = GameSession._meta.get_field(field).column
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, GameSession._meta.db_table)
    leading = {
        tuple(c["orders"][:2]) for c in constraints.values() if c["index"] and c["columns"][:2] == [column, "uid"]
    }
    wanted = {("DESC", "ASC")} if field in NEAR_UNIQUE_SORTS else {("ASC", "ASC"), ("DESC", "ASC")}
    assert wanted <= leading


@pytest.mark.parametrize(
    "raw",
    [
        sort({"password": "ASC"}),
        sort({"users": "ASC"}),
        sort({"dateCreated": "UP"}),
        sort({"dateCreated": 1}),
        sort(["dateCreated"]),
        sort({}),
        quote("{dateCreated: DESC}"),
        quote('"dateCreated"'),
    ],
    ids=["secret", "list-member", "bad-direction", "number-direction", "array", "empty", "not-json", "string"],
)
def test_bad_sort_is_400(api, host, raw):
    response = api.as_(host).get(f"{LIST}?sort={raw}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_sort"
    assert response.json()["errors"][0]["field"] == "sort"


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
def filterable(game_server, host, member, make_session):
    server = uuid.uuid4()
    return {
        # Only session:* accounts may set serverUid: the game server makes it for the host.
        "a": make_session(game_server, host_uid=str(host.uid), users=[str(host.uid)], server_uid=server),
        "b": make_session(host, status="in_progress", visibility="private"),
        "c": make_session(game_server, host_uid=None, users=[str(member.uid)], server_uid=server),
        "server": server,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=open", {"a", "c"}),
        ("status=in_progress", {"b"}),
        ("status=closed", set()),
        ("visibility=private", {"b"}),
        ("visibility=public", {"a", "c"}),
        ("hostUid={host}", {"a", "b"}),
        ("serverUid={server}", {"a", "c"}),
        ("user={member}", {"c"}),
        ("user={host}", {"a", "b"}),
        ("status=open&serverUid={server}&user={member}", {"c"}),
        ("hostUid={outsider}", set()),
    ],
)
def test_filters_and_count_agree(api, game_server, host, member, outsider, filterable, query, expected):
    query = query.format(host=host.uid, member=member.uid, outsider=outsider.uid, server=filterable["server"])
    api.as_(game_server)

    listed = set(uids(api.get(f"{LIST}?{query}")))
    counted = api.get(f"{COUNT}?{query}")

    assert listed == {str(filterable[name].uid) for name in expected}
    assert counted.status_code == 200
    assert counted.json() == {"count": len(expected)}


def test_filters_never_widen_what_the_caller_sees(api, host, outsider, filterable):
    # outsider filters for the host's sessions: the private one stays hidden.
    response = api.as_(outsider).get(f"{LIST}?hostUid={host.uid}")

    assert set(uids(response)) == {str(filterable["a"].uid)}
    assert api.get(f"{COUNT}?hostUid={host.uid}").json() == {"count": 1}


@pytest.mark.parametrize(
    "query",
    ["status=paused", "visibility=secret", "hostUid=nope", "serverUid=123", "user=not-a-uuid"],
)
@pytest.mark.parametrize("path", [LIST, COUNT])
def test_bad_filter_values_are_400(api, host, path, query):
    response = api.as_(host).get(f"{path}?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == query.split("=")[0]


def test_count_of_nothing_is_zero(api, host):
    assert api.as_(host).get(COUNT).json() == {"count": 0}


DEEP_SORTS = [
    "",
    *(sort({member: direction}) for member in SORTABLE for direction in ("ASC", "DESC")),
    sort({"type": "ASC", "dateModified": "DESC"}),
]


@pytest.mark.parametrize("persona", ["outsider", "member", "invitee", "game_server"])
def test_a_deep_page_holds_the_rows_a_plain_offset_reads(
    api, roster, request, monkeypatch, clock, host, member, make_session, persona
):
    """From pagination.DEFERRED_FROM on, a page's keys are found first and its rows read next:
    for every sort, filter and caller, the same rows in the same order as a plain OFFSET."""
    from sessions_project import pagination

    for i in range(7):  # equal values in every sortable member but uid, so pages cut through ties
        make_session(host, visibility="private" if i % 3 == 0 else "public", team_size=i % 2, name=f"s{i % 3}")
        if i % 2:
            clock.advance(seconds=1)
    # closing, then past closesAt: the status as of now differs from the stored one
    session_close(session_id=make_session(host).pk, actor=host, close_after=30)
    clock.advance(seconds=60)
    api.as_(request.getfixturevalue(persona))

    for order in DEEP_SORTS:
        for query in ("", "status=open", "visibility=private", f"user={member.uid}"):
            for skip in (0, 2, 5):
                url = f"{LIST}?limit=3&skip={skip}&{query}" + (f"&sort={order}" if order else "")
                monkeypatch.setattr(pagination, "DEFERRED_FROM", 10**18)
                plain = api.get(url)
                monkeypatch.setattr(pagination, "DEFERRED_FROM", 0)
                deferred = api.get(url)
                assert (deferred.status_code, deferred.json()) == (plain.status_code, plain.json()), url


@pytest.mark.parametrize("persona", ["outsider", "host", "member", "invitee", "game_server"])
@pytest.mark.parametrize("query", ["", "status=open", "status=closed", "visibility=private", "visibility=public"])
def test_the_count_is_the_length_of_the_whole_list(api, roster, request, clock, host, make_session, persona, query):
    """/sessions/count counts public and private sessions apart: the sum is what the list shows."""
    session_close(session_id=make_session(host).pk, actor=host, close_after=30)
    session_close(session_id=make_session(host, visibility="private").pk, actor=host, close_after=30)
    clock.advance(seconds=60)  # both read as closed now, though still stored as closing
    api.as_(request.getfixturevalue(persona))

    listed = uids(api.get(f"{LIST}?limit=1000&{query}"))
    assert api.get(f"{COUNT}?{query}").json() == {"count": len(listed)}


# --- the query budget -----------------------------------------------------------------------


def populate(game_server, sessions: int, members_each: int) -> None:
    """`sessions` public sessions of `members_each` members, in two teams, through the services
    (so the rendered members are real); private ones the caller belongs to via memberships."""

    players = [PlayerFactory() for _ in range(members_each)]
    for _ in range(sessions):
        session_create(
            actor=game_server, values={"users": [str(p.uid) for p in players], "num_teams": 2, "host_uid": None}
        )


def test_the_list_runs_no_count_query(api, host, make_session):
    for _ in range(3):
        make_session(host)
    with_token(api, host)

    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{LIST}?limit=2&skip=1&status=open&sort={sort({'version': 'ASC'})}")

    assert len(response.json()) == 2
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize("limit", [1, 10, 1000])
@pytest.mark.parametrize("members_each", [1, 12])
def test_the_list_is_one_query_whatever_the_limit_and_the_members(
    api, game_server, member, make_session, django_assert_num_queries, limit, members_each
):
    populate(game_server, sessions=15, members_each=members_each)
    make_session(game_server, visibility="private", users=[str(member.uid)])
    with_token(api, member)

    # 1: the page of session rows, visibility as subqueries and the host's uid joined; the
    # caller comes from the token, `users`/`teams`/`invited` from each row's rendered members.
    with django_assert_num_queries(1):
        response = api.get(f"{LIST}?limit={limit}&user={member.uid}&sort={sort({'dateModified': 'DESC'})}")

    assert len(response.json()) == min(limit, 1)
    with django_assert_num_queries(1):
        response = api.get(f"{LIST}?limit={limit}")
    assert len(response.json()) == min(limit, 16)
    assert {len(s["users"]) for s in response.json()} <= {1, members_each}


@pytest.mark.parametrize("members_each", [1, 12, 40])
@pytest.mark.parametrize("persona", ["member", "outsider", "game_server"])
def test_the_detail_is_one_query_whatever_the_members(
    api, game_server, member, outsider, request, django_assert_num_queries, members_each, persona
):
    players = [member, *(PlayerFactory() for _ in range(members_each - 1))]
    session = session_create(
        actor=game_server, values={"users": [str(p.uid) for p in players], "num_teams": 3, "host_uid": None}
    )
    with_token(api, request.getfixturevalue(persona))

    # 1: the session row (host's uid joined); visibility is judged from its rendered members.
    with django_assert_num_queries(1):
        response = api.get(f"{LIST}/{session.uid}")

    assert response.status_code == 200
    assert len(response.json()["users"]) == members_each


def test_a_private_detail_refused_costs_at_most_two_queries(api, game_server, outsider, django_assert_max_num_queries):
    session = session_create(actor=game_server, values={"visibility": "private"})
    with_token(api, outsider)

    # 1: the session row; 2: whether the caller holds a reservation in it (the one tie that
    # is not in the row).
    with django_assert_max_num_queries(2):
        response = api.get(f"{LIST}/{session.uid}")

    assert response.status_code == 404


def test_count_is_one_query(api, host, make_session, django_assert_num_queries):
    for _ in range(3):
        make_session(host)
    with_token(api, host)

    # 1: SELECT COUNT(*) over the visible, filtered sessions.
    with django_assert_num_queries(1):
        assert api.get(f"{COUNT}?status=open").json() == {"count": 3}


def test_memberships_and_sessions_exist_as_rendered(game_server):
    # Guard for the tests above: populate really makes members.
    populate(game_server, sessions=2, members_each=3)

    assert Membership.objects.count() == 6
    assert GameSession.objects.filter(status=SessionStatus.OPEN).count() == 2
