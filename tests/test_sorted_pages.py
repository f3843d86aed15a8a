"""GET /sessions sorted by status or visibility: the page is the plain ORDER BY's, whoever asks.

On PostgreSQL a page sorted first by the status as of now, or by visibility for a caller who
sees only some sessions, is read from parts (one value of the first member each) merged in
one UNION ALL (lists.ordered_page). These tests compare every such page, on the prepared
read (no filter) and on the ORM path (filters), with the same sessions read by one plain
ORDER BY: due sessions not yet swept, private sessions seen through each kind of tie, ties in
the other members, several skips and limits."""

from __future__ import annotations

import json
from collections import OrderedDict
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app import lists
from sessions_app.filters import parse_sort
from sessions_app.models import GameSession, SessionStatus, Visibility
from sessions_app.services.invites import reservation_create
from sessions_app.services.lifecycle import session_close

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/sessions"
ON_POSTGRESQL = connection.vendor == "postgresql"

# status and visibility first (parts), and after another member (one ordered query).
SORTS = [
    {"status": "ASC"},
    {"status": "DESC"},
    {"visibility": "ASC"},
    {"visibility": "DESC"},
    {"status": "ASC", "name": "DESC"},
    {"status": "DESC", "uid": "DESC"},
    {"visibility": "ASC", "dateCreated": "DESC"},
    {"visibility": "DESC", "status": "ASC", "name": "ASC"},
    {"name": "ASC", "status": "DESC"},
    {"teamSize": "DESC", "visibility": "ASC"},
]
PERSONAS = ["host", "member", "invitee", "reserved", "outsider", "game_server"]


@pytest.fixture(autouse=True)
def fresh_prepared_shapes(monkeypatch):
    # A prepared shape is compiled once and kept: each test compiles its own (DEFERRED_FROM
    # is moved below).
    monkeypatch.setattr(lists, "_shapes", OrderedDict())


@pytest.fixture
def invitee(db):
    return PlayerFactory(username="invitee")


@pytest.fixture
def reserved(db):
    return PlayerFactory(username="reserved")


@pytest.fixture
def sessions(clock, host, member, invitee, reserved, game_server, make_session):
    """Sessions in every status as of now, a third of them private and tied to a persona in
    each way, with equal names and team sizes (pages cut through ties)."""
    made = []
    for i in range(18):
        private = i % 3 == 0
        values = {"visibility": "private" if private else "public", "name": f"n{i % 4}", "team_size": i % 2}
        if private and i % 2:
            values["invited"] = [str(invitee.uid)]
        owner = host if i % 5 else game_server
        if private and i % 4 == 0:
            owner, values["users"] = game_server, [str(member.uid)]  # only session:* names users
        if owner is game_server:
            values["host_uid"] = None
        if i % 6 == 1:
            values["idle_timeout"] = 30  # idle deadline passes below: due, not swept
        made.append(make_session(owner, **values))
        if i % 2:
            clock.advance(seconds=1)
    for session in made[2::7]:
        GameSession.objects.filter(pk=session.pk).update(status=SessionStatus.IN_PROGRESS)
    for session in made[3::8]:
        session_close(session_id=session.pk, actor=None, close_after=0)  # closed
    for session in made[4::9]:
        session_close(session_id=session.pk, actor=None, close_after=20)  # closing, due below
    session_close(session_id=made[5].pk, actor=None, close_after=600)  # closing, not due
    reservation_create(session_id=made[9].pk, actor=game_server, player_uid=str(reserved.uid))
    clock.advance(seconds=60)
    return made


def plain_page(player, ordering, skip, limit):
    """The page as one plain ORDER BY of the sessions the player sees reads it."""
    now = timezone.now()
    visible = GameSession.objects.visible_to(player).with_effective_status(now)
    return [str(uid) for uid in visible.order_by(*ordering).values_list("uid", flat=True)[skip : skip + limit]]


def listed(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.json()
    return [row["uid"] for row in response.json()]


def order(spec: dict) -> str:
    return quote(json.dumps(spec))


def test_the_sessions_read_as_every_status_and_both_visibilities(sessions, request):
    private = GameSession.objects.filter(visibility=Visibility.PRIVATE)
    for persona in ("host", "member", "invitee", "reserved"):  # each tied to private sessions
        assert private.filter(pk__in=GameSession.objects.visible_to(request.getfixturevalue(persona))).exists()
    assert not private.filter(pk__in=GameSession.objects.visible_to(request.getfixturevalue("outsider"))).exists()
    now = timezone.now()
    read_as = {s.uid: s.effective_status(now) for s in GameSession.objects.all()}
    assert set(read_as.values()) == {s.value for s in SessionStatus}
    due = GameSession.objects.due(now)
    assert due.filter(status=SessionStatus.OPEN).exists()
    assert due.filter(status=SessionStatus.CLOSING).exists()
    assert set(GameSession.objects.values_list("visibility", flat=True)) == {v.value for v in Visibility}


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_page_sorted_by_status_or_visibility_is_the_plain_order_by(api, sessions, request, persona):
    player = request.getfixturevalue(persona)
    api.as_(player)
    for spec in SORTS:
        ordering = parse_sort(json.dumps(spec))
        for limit, skip in ((20, 0), (1, 0), (3, 2), (4, 5), (2, 11), (5, 30)):
            expected = plain_page(player, ordering, skip, limit)
            page = f"{LIST}?limit={limit}&skip={skip}&sort={order(spec)}"
            assert listed(api, page) == expected, page  # the prepared read
            # the ORM path: a filter that every session passes
            assert listed(api, f"{page}&search=n") == expected, page


@pytest.mark.parametrize("persona", ["member", "invitee", "game_server"])
@pytest.mark.parametrize("query", ["status=open", "status=closed", "visibility=private", "highlight=false"])
def test_a_filtered_page_sorted_by_status_or_visibility_is_the_plain_order_by(
    api, sessions, request, persona, query, member
):
    player = request.getfixturevalue(persona)
    api.as_(player)
    whole = {row["uid"] for row in api.get(f"{LIST}?limit=1000&{query}").json()}
    for spec in SORTS[:4]:
        ordering = parse_sort(json.dumps(spec))
        expected = [uid for uid in plain_page(player, ordering, 0, 1000) if uid in whole]
        for limit, skip in ((20, 0), (2, 1), (3, 4)):
            page = f"{LIST}?limit={limit}&skip={skip}&sort={order(spec)}&{query}"
            assert listed(api, page) == expected[skip : skip + limit], page


@pytest.mark.parametrize("persona", ["invitee", "game_server"])
def test_a_deep_page_sorted_by_status_or_visibility_is_the_plain_order_by(api, sessions, request, monkeypatch, persona):
    """From pagination.DEFERRED_FROM on, the page is today's deferred read, not parts."""
    from sessions_project import pagination

    monkeypatch.setattr(pagination, "DEFERRED_FROM", 3)
    player = request.getfixturevalue(persona)
    api.as_(player)
    for spec in SORTS[:4]:
        ordering = parse_sort(json.dumps(spec))
        for limit, skip in ((2, 2), (2, 3), (4, 7)):
            page = f"{LIST}?limit={limit}&skip={skip}&sort={order(spec)}"
            assert listed(api, page) == plain_page(player, ordering, skip, limit), page
            assert listed(api, f"{page}&search=n") == plain_page(player, ordering, skip, limit), page


@pytest.mark.parametrize(
    ("persona", "spec", "parts"),
    [
        ("invitee", {"status": "ASC"}, 4),
        ("game_server", {"status": "DESC"}, 4),
        ("invitee", {"visibility": "ASC"}, 2),
        ("invitee", {"visibility": "DESC", "name": "ASC"}, 2),
        ("game_server", {"visibility": "ASC"}, 1),  # sees every session: one index walk
        ("invitee", {"name": "ASC", "status": "ASC"}, 1),
    ],
)
@pytest.mark.parametrize("query", ["", "search=n"])
def test_a_page_sorted_by_status_or_visibility_is_one_query(
    api, sessions, request, persona, spec, parts, query, django_assert_num_queries
):
    player = request.getfixturevalue(persona)
    api.as_(player)
    url = f"{LIST}?limit=5&skip=1&sort={order(spec)}&{query}"
    api.get(url)  # the prepared shape is compiled once (no query)
    with CaptureQueriesContext(connection) as queries:
        # 1: the page, with the hosts' uids joined (on PostgreSQL a UNION ALL of its parts).
        with django_assert_num_queries(1):
            response = api.get(url)
    assert response.status_code == 200
    sql = queries[0]["sql"]
    assert sql.count("UNION ALL (") + 1 == (parts if ON_POSTGRESQL else 1)
