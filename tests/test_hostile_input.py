"""Text the database cannot store, bodies nested too deep or undecodable: a 400 with a stable
code and nothing stored, never a 500 (and never a row that breaks every later read)."""

from __future__ import annotations

import json

import pytest

from sessions_app.models import Chart, GameSession, Score, Song

from .conftest import row
from .factories import ChartFactory, SongFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

JSON = "application/json"
SURROGATE = '"\\ud800"'  # as raw JSON text: a lone high surrogate
NUL = '"\\u0000"'


def send(api, method: str, path: str, text: str):
    return api.generic(method, path, data=text.encode(), content_type=JSON)


def nested(depth: int) -> dict:
    """A `data` object `depth` levels deep (the object itself is level 1)."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# --- invalid_text ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [SURROGATE, NUL])
def test_bad_text_in_session_data_is_refused_and_not_stored(api, host, bad):
    response = send(api.as_(host), "POST", "/api/v1/sessions", f'{{"data": {{"k": {bad}}}}}')

    body = assert_problem(response, 400, "invalid_text")
    assert body["errors"][0]["field"] == "data.k"
    assert GameSession.objects.count() == 0
    assert api.get("/api/v1/sessions").status_code == 200


@pytest.mark.parametrize(
    "text",
    [
        '{"data": {"\\ud800": 1}}',
        '{"data": {"a": [{"b": ["x", "\\udfff"]}]}}',
        '{"name": "ab\\u0000c"}',
        '{"type": "\\ud83d"}',
    ],
)
def test_bad_text_anywhere_in_a_patch_is_refused(api, host, session, text):
    before = row(session)

    assert_problem(send(api.as_(host), "PATCH", f"/api/v1/sessions/{session.uid}", text), 400, "invalid_text")

    assert row(session).version == before.version
    assert row(session).data == before.data


def test_a_valid_surrogate_pair_is_text(api, host):
    response = send(api.as_(host), "POST", "/api/v1/sessions", '{"data": {"emoji": "\\ud83d\\ude00"}}')

    assert response.status_code == 201
    assert response.json()["data"] == {"emoji": "\U0001f600"}


def test_bad_text_in_score_data_is_refused(api, host, session):
    chart = ChartFactory()

    response = send(
        api.as_(host),
        "POST",
        f"/api/v1/sessions/{session.uid}/scores",
        f'{{"chart": {chart.pk}, "value": 1, "data": {{"x": {NUL}}}}}',
    )

    assert_problem(response, 400, "invalid_text")
    assert Score.objects.count() == 0


def test_bad_text_in_a_score_import_is_refused(api, host):
    text = (
        f'{{"scores": [{{"clientId": {SURROGATE}, "chart": 1, "value": 1, "timeAchieved": "2026-01-01T00:00:00Z"}}]}}'
    )

    body = assert_problem(send(api.as_(host), "POST", "/api/v1/scores/import", text), 400, "invalid_text")

    assert body["errors"][0]["field"] == "scores[0].clientId"
    assert GameSession.objects.count() == 0


def test_bad_text_in_song_and_chart_data_is_refused(api, game_server):
    song = SongFactory()
    api.as_(game_server)

    assert_problem(send(api, "POST", "/api/v1/songs", f'{{"title": "t", "artist": {NUL}}}'), 400, "invalid_text")
    assert_problem(
        send(api, "PATCH", f"/api/v1/songs/{song.pk}", f'{{"data": {{"a": {SURROGATE}}}}}'), 400, "invalid_text"
    )
    chart_body = f'{{"song": {song.pk}, "difficulty": "HARD", "data": {{"a": {NUL}}}}}'
    assert_problem(send(api, "POST", "/api/v1/charts", chart_body), 400, "invalid_text")
    assert Song.objects.count() == 1
    assert Chart.objects.count() == 0


@pytest.mark.parametrize(
    "query",
    ["search=%00", "search=%ED%A0%80", "search=%FF", "sea%00rch=x", "type=a%00b"],
)
def test_bad_text_in_the_query_string_is_refused(api, host, query):
    body = assert_problem(api.as_(host).get(f"/api/v1/sessions?{query}"), 400, "invalid_text")

    assert body["errors"][0]["code"] == "invalid_text"


def test_bad_text_in_the_join_password_header_is_refused(api, host, member, make_session):
    locked = make_session(host, password="s3cret")

    response = api.as_(member).get(f"/api/v1/sessions/{locked.uid}/join", HTTP_X_SESSION_PASSWORD="s3\x00cret")

    body = assert_problem(response, 400, "invalid_text")
    assert body["errors"][0]["field"] == "X-Session-Password"
    assert member.id not in set(row(locked).memberships.values_list("player_id", flat=True))


# --- bodies the parser cannot take ----------------------------------------------------------


def test_a_body_nested_a_thousand_deep_is_400(api, host):
    text = '{"data": ' + "[" * 1000 + "]" * 1000 + "}"

    assert_problem(send(api.as_(host), "POST", "/api/v1/sessions", text), 400, "too_deep")
    assert GameSession.objects.count() == 0


def test_a_body_nested_a_hundred_thousand_deep_is_400(api, host):
    text = "[" * 100_000 + "]" * 100_000

    assert_problem(send(api.as_(host), "POST", "/api/v1/sessions", text), 400)


@pytest.mark.parametrize("raw", [b'{"name": "\xff\xfe"}', b"\xed\xa0\x80", b'{"a": NaN}', b"{"])
def test_an_undecodable_body_is_400(api, host, raw):
    response = api.as_(host).generic("POST", "/api/v1/sessions", data=raw, content_type=JSON)

    assert_problem(response, 400, "parse_error")


def test_a_sort_of_1200_brackets_is_400(api, host):
    assert_problem(api.as_(host).get("/api/v1/sessions", {"sort": "[" * 1200}), 400, "invalid_sort")


# --- depth of data --------------------------------------------------------------------------


def test_session_data_may_nest_32_levels(api, host):
    response = api.as_(host).post("/api/v1/sessions", {"data": nested(32)}, format="json")

    assert response.status_code == 201
    assert row(GameSession.objects.get()).data == nested(32)


@pytest.mark.parametrize("depth", [33, 60])
def test_session_data_nested_deeper_than_32_is_400_on_data(api, host, depth):
    body = assert_problem(
        api.as_(host).post("/api/v1/sessions", {"data": nested(depth)}, format="json"), 400, "too_deep"
    )

    assert body["errors"][0]["field"] == "data"
    assert body["errors"][0]["code"] == "too_deep"
    assert GameSession.objects.count() == 0


def test_lists_count_as_levels_of_data(api, host, session):
    def lists(count: int) -> dict:
        value: list = []
        for _ in range(count - 1):
            value = [value]
        return {"l": value}  # the object, then `count` lists: 1 + count levels

    api.as_(host)
    at_limit = api.patch(f"/api/v1/sessions/{session.uid}", {"data": lists(31)}, format="json")
    past_limit = api.patch(f"/api/v1/sessions/{session.uid}", {"data": lists(32)}, format="json")

    assert at_limit.status_code == 200
    assert_problem(past_limit, 400, "too_deep")
    assert row(session).data == lists(31)


def test_score_song_and_chart_data_nested_deeper_than_32_is_400(api, game_server, host, session):
    song = SongFactory()
    chart = ChartFactory(song=song)
    api.as_(game_server)

    song_response = api.patch(f"/api/v1/songs/{song.pk}", {"data": nested(33)}, format="json")
    chart_response = api.post("/api/v1/charts", {"song": song.pk, "difficulty": "X", "data": nested(33)}, format="json")
    score_response = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/scores", {"chart": chart.pk, "value": 1, "data": nested(33)}, format="json"
    )

    for response in (song_response, chart_response, score_response):
        body = assert_problem(response, 400, "too_deep")
        assert body["errors"][0]["field"] == "data"
    assert Song.objects.get().data == {}
    assert Chart.objects.count() == 1
    assert Score.objects.count() == 0


def test_imported_score_data_nested_deeper_than_32_is_400(api, host):
    chart = ChartFactory()
    item = {"clientId": "a", "chart": chart.pk, "value": 1, "timeAchieved": "2026-01-01T00:00:00Z", "data": nested(33)}

    body = assert_problem(api.as_(host).post("/api/v1/scores/import", {"scores": [item]}, format="json"), 400)

    assert body["errors"] == [{"field": "scores[0].data", "code": "too_deep", "message": body["errors"][0]["message"]}]
    assert Score.objects.count() == 0
    json.dumps(body)
