"""Cursor paging of GET /sessions: a Link rel="next" header with a signed keyset cursor; every
page after the first continues exactly after the last one, whatever is created or deleted."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from sessions_app.models import GameSession
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

LIST = "/api/v1/sessions"


def next_link(response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<(http://testserver(/[^>]*))>; rel="next"', link)
    assert match, link
    return match.group(2)


def walk(api, url: str) -> list[str]:
    """Every page from `url` on, by following the next links; the uids in the order seen."""
    seen: list[str] = []
    while url is not None:
        response = api.get(url)
        assert response.status_code == 200, response.json()
        seen += [s["uid"] for s in response.json()]
        url = next_link(response)
    return seen


@pytest.fixture
def varied(make_session, host, settings):
    """Sessions with repeated values of every sorted member, some without a closesAt or a
    capacity, and data values of several types."""
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0
    made = []
    values = [5, "5", 2.5, None, True, "abc", {"x": 1}]
    for index in range(23):
        session = make_session(
            host,
            num_teams=index % 3,
            team_size=2,
            status="in_progress" if index % 4 == 0 else "open",
            visibility="private" if index % 5 == 0 else "public",
            data={"v": values[index % len(values)]} if index % 6 else {},
        )
        made.append(session)
    # Equal creation times (the uid breaks the tie), and a few closing sessions.
    GameSession.objects.filter(pk__in=[s.pk for s in made[:6]]).update(date_created=made[0].date_created)
    closes = made[0].date_created + timedelta(hours=1)
    GameSession.objects.filter(pk__in=[s.pk for s in made[6:10]]).update(status="closing", closes_at=closes)
    return made


SORTS = [
    None,
    {"dateCreated": "ASC"},
    {"numTeams": "DESC"},
    {"status": "ASC"},
    {"status": "DESC", "dateCreated": "ASC"},
    {"visibility": "ASC"},
    {"closesAt": "ASC"},
    {"closesAt": "DESC"},
    {"freePlaces": "ASC"},
    {"freePlaces": "DESC"},
    {"data.v": "ASC"},
    {"data.v": "DESC"},
    {"highlight": "DESC", "name": "ASC"},
]


@pytest.mark.parametrize("spec", SORTS)
@pytest.mark.parametrize("persona", ["host", "outsider", "game_server"])
def test_following_the_next_links_gives_the_whole_list_in_order_once(api, varied, request, spec, persona):
    player = request.getfixturevalue(persona)
    api.as_(player)
    sort = f"&sort={quote(json.dumps(spec))}" if spec else ""
    whole = [s["uid"] for s in api.get(f"{LIST}?limit=1000{sort}").json()]

    assert walk(api, f"{LIST}?limit=4{sort}") == whole


def test_the_link_repeats_the_parameters_with_the_cursor_and_drops_skip(api, varied, outsider):
    response = api.as_(outsider).get(f"{LIST}?limit=2&skip=1&status=open&data.v=ne(1)")
    query = parse_qs(urlsplit(next_link(response)).query)

    assert set(query) == {"limit", "status", "data.v", "cursor"}
    assert query["limit"] == ["2"]
    assert query["status"] == ["open"]
    assert query["data.v"] == ["ne(1)"]
    second = api.get(next_link(response))
    assert [s["uid"] for s in second.json()] == [
        s["uid"] for s in api.get(f"{LIST}?limit=2&skip=3&status=open&data.v=ne(1)").json()
    ]


def test_a_page_shorter_than_the_limit_has_no_next_link(api, make_session, host):
    for _ in range(3):
        make_session(host)

    assert next_link(api.as_(host).get(f"{LIST}?limit=4")) is None
    full = api.get(f"{LIST}?limit=3")
    assert next_link(full) is not None  # another page may follow: it is empty
    last = api.get(next_link(full))
    assert last.json() == []
    assert next_link(last) is None


def test_a_cursor_works_with_another_limit(api, varied, outsider):
    first = api.as_(outsider).get(f"{LIST}?limit=3")
    cursor = parse_qs(urlsplit(next_link(first)).query)["cursor"][0]
    whole = [s["uid"] for s in api.get(f"{LIST}?limit=1000").json()]

    assert [s["uid"] for s in api.get(f"{LIST}?limit=5&cursor={quote(cursor)}").json()] == whole[3:8]


@pytest.mark.parametrize(
    "changed",
    [
        f"sort={quote(json.dumps({'dateCreated': 'ASC'}))}",
        "status=open",
        "data.v=5",
        "freePlaces=gte(1)",
    ],
)
def test_a_cursor_with_another_sort_or_other_filters_is_a_mismatch(api, varied, outsider, changed):
    first = api.as_(outsider).get(f"{LIST}?limit=3")
    cursor = parse_qs(urlsplit(next_link(first)).query)["cursor"][0]

    body = assert_problem(api.get(f"{LIST}?limit=3&{changed}&cursor={quote(cursor)}"), 400, "cursor_mismatch")
    assert body["errors"][0]["field"] == "cursor"


def test_a_changed_or_made_up_cursor_is_invalid(api, varied, outsider):
    first = api.as_(outsider).get(f"{LIST}?limit=3")
    cursor = parse_qs(urlsplit(next_link(first)).query)["cursor"][0]
    tampered = cursor[:-3] + ("AAA" if cursor[-3:] != "AAA" else "BBB")

    for bad in (tampered, "abc", "x" * 300, ""):
        if bad:
            assert_problem(api.get(f"{LIST}?limit=3&cursor={quote(bad)}"), 400, "invalid_cursor")


def test_skip_with_a_cursor_is_refused(api, varied, outsider):
    first = api.as_(outsider).get(f"{LIST}?limit=3")
    cursor = parse_qs(urlsplit(next_link(first)).query)["cursor"][0]

    assert_problem(api.get(f"{LIST}?limit=3&skip=3&cursor={quote(cursor)}"), 400, "skip_with_cursor")


def test_pages_hold_while_sessions_are_created_and_deleted_between_them(api, host, outsider, settings):
    """One thread, one database: between each two pages, new sessions appear (first in the
    default order) and others go; every session that existed throughout is seen once."""
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0
    lasting = [session_create(actor=host, values={}) for _ in range(20)]
    doomed = [session_create(actor=host, values={}) for _ in range(10)]
    api.as_(outsider)
    seen: list[str] = []
    url: str | None = f"{LIST}?limit=3"
    while url is not None:
        response = api.get(url)
        seen += [s["uid"] for s in response.json()]
        url = next_link(response)
        session_create(actor=PlayerFactory(), values={})
        if doomed:
            doomed.pop().delete()

    assert len(seen) == len(set(seen))
    assert {str(s.uid) for s in lasting} <= set(seen)


def test_a_cursor_page_reads_one_row_per_session_whatever_its_depth(api, make_session, host, django_assert_num_queries):
    for _ in range(12):
        make_session(host)
    api.as_(host)
    url = f"{LIST}?limit=2"
    for _ in range(5):
        url = next_link(api.get(url))
    # 1: the page (the keyset condition is in its WHERE; no count, no step over earlier rows).
    with django_assert_num_queries(1):
        response = api.get(url)
    assert len(response.json()) == 2
