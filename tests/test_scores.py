"""Scores submitted to a live session (POST /sessions/{uid}/scores) and a session read back with
its scores, songs and charts (GET /sessions/{uid}/scores, seed 002)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from sessions_app.models import GameSession, Score
from sessions_app.services.membership import session_join, session_leave
from sessions_app.services.sessions import session_create
from sessions_project.times import iso

from .conftest import as_token
from .factories import ChartFactory, ScoreFactory, SongFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chart(db):
    return ChartFactory(song=SongFactory(title="Paranoia", artist="180"), difficulty="HARD", level=12)


def scores_url(session):
    return f"/api/v1/sessions/{session.uid}/scores"


# --- submitting -----------------------------------------------------------------------------


def test_a_member_submits_its_own_score(api, session, member, chart, clock):
    before = api.as_(member).get(f"/api/v1/sessions/{session.uid}")

    response = api.post(
        scores_url(session),
        {"chart": chart.pk, "value": 987654, "grade": "AAA", "lamp": "FULL COMBO", "data": {"great": 3}},
        format="json",
    )

    assert response.status_code == 201, response.json()
    score = Score.objects.get()
    assert response.json() == {
        "id": score.pk,
        "session": str(session.uid),
        "player": str(member.uid),
        "chart": chart.pk,
        "song": chart.song_id,
        "value": 987654,
        "grade": "AAA",
        "lamp": "FULL COMBO",
        "data": {"great": 3},
        "timeAchieved": iso(clock.now),
    }
    assert (score.session_id, score.player_id, score.value, score.client_id) == (
        session.pk,
        member.pk,
        Decimal(987654),
        None,
    )
    # Scores are not part of the session document: version and ETag stay.
    after = api.get(f"/api/v1/sessions/{session.uid}")
    assert after.json()["version"] == before.json()["version"]
    assert after["ETag"] == before["ETag"]


def test_a_decimal_value_is_kept_exactly_and_a_time_can_be_given(api, session, host, chart):
    response = api.as_(host).post(
        scores_url(session),
        {"chart": chart.pk, "value": 98.765432, "timeAchieved": "2026-01-02T03:04:05.678Z"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["value"] == 98.765432
    assert response.json()["grade"] is None
    assert response.json()["timeAchieved"] == "2026-01-02T03:04:05.678Z"
    score = Score.objects.get()
    assert score.value == Decimal("98.765432")
    assert score.time_achieved == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_a_session_star_account_reports_a_members_score(api, session, member, game_server, chart):
    response = api.as_(game_server).post(
        scores_url(session), {"chart": chart.pk, "value": 5, "player": str(member.uid).upper()}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["player"] == str(member.uid)
    assert Score.objects.get().player == member


def test_a_session_star_account_may_report_only_a_members_score(api, session, outsider, game_server, chart):
    not_member = api.as_(game_server).post(
        scores_url(session), {"chart": chart.pk, "value": 5, "player": str(outsider.uid)}, format="json"
    )
    unknown = api.post(
        scores_url(session),
        {"chart": chart.pk, "value": 5, "player": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    itself = api.post(scores_url(session), {"chart": chart.pk, "value": 5}, format="json")

    assert not_member.status_code == 400
    assert not_member.json()["code"] == "player_not_member"
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_player"
    assert itself.status_code == 403  # its own score, and it is no member
    assert itself.json()["code"] == "not_member"
    assert not Score.objects.exists()


def test_a_non_member_gets_403_before_its_body_is_checked(api, session, outsider, chart):
    valid = api.as_(outsider).post(scores_url(session), {"chart": chart.pk, "value": 1}, format="json")
    invalid = api.post(scores_url(session), {"chart": "nope"}, format="json")

    assert valid.status_code == 403
    assert valid.json()["code"] == "not_member"
    assert invalid.status_code == 403
    assert not Score.objects.exists()


def test_a_member_may_not_submit_another_players_score(api, session, host, member, chart):
    response = api.as_(member).post(
        scores_url(session), {"chart": chart.pk, "value": 1, "player": str(host.uid)}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "player_forbidden"
    assert not Score.objects.exists()


def test_a_private_session_is_404_to_whoever_may_not_see_it(api, make_session, host, outsider, chart):
    private = make_session(host, visibility="private")
    client = api.as_(outsider)

    posted = client.post(scores_url(private), {"chart": chart.pk, "value": 1}, format="json")
    read = client.get(scores_url(private))

    assert (posted.status_code, read.status_code) == (404, 404)
    assert posted.json()["code"] == read.json()["code"] == "session_not_found"


def test_malformed_and_unknown_session_uids(api, member, chart):
    client = api.as_(member)
    assert client.get("/api/v1/sessions/nope/scores").status_code == 400
    assert (
        client.post("/api/v1/sessions/nope/scores", {"chart": chart.pk, "value": 1}, format="json").status_code == 400
    )
    missing = "/api/v1/sessions/00000000-0000-0000-0000-000000000000/scores"
    assert client.get(missing).status_code == 404


def test_an_unknown_chart_is_400(api, session, member, chart):
    response = api.as_(member).post(scores_url(session), {"chart": chart.pk + 1, "value": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_chart"
    assert response.json()["errors"] == [
        {"field": "chart", "code": "unknown_chart", "message": f"No chart with id {chart.pk + 1}."}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1}, "chart"),
        ({"chart": "CHART"}, "value"),
        ({"chart": "CHART", "value": "100"}, "value"),  # a JSON number, not a string
        ({"chart": "CHART", "value": True}, "value"),
        ({"chart": "CHART", "value": 1.0000001}, "value"),  # six decimal places at most
        ({"chart": "CHART", "value": 10**14}, "value"),
        ({"chart": "CHART", "value": 99999999999999.98}, "value"),  # 16 significant digits
        ({"chart": "1", "value": 1}, "chart"),
        ({"chart": "CHART", "value": 1, "timeAchieved": "yesterday"}, "timeAchieved"),
        ({"chart": "CHART", "value": 1, "timeAchieved": "1969-12-31T23:59:59Z"}, "timeAchieved"),
        ({"chart": "CHART", "value": 1, "timeAchieved": "9999-12-31T23:59:59Z"}, "timeAchieved"),
        ({"chart": "CHART", "value": 1, "data": "x"}, "data"),
        ({"chart": "CHART", "value": 1, "grade": "A" * 33}, "grade"),
    ],
)
def test_bad_scores_are_400_with_the_field_named(api, session, member, chart, body, field):
    body = {k: (chart.pk if v == "CHART" else v) for k, v in body.items()}

    response = api.as_(member).post(scores_url(session), body, format="json")

    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not Score.objects.exists()


def test_a_score_of_fifteen_significant_digits_comes_back_as_sent(api, session, member, chart):
    client = api.as_(member)

    response = client.post(scores_url(session), {"chart": chart.pk, "value": 99999999999999.9}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["value"] == 99999999999999.9
    assert client.get(scores_url(session)).json()["scores"][0]["value"] == 99999999999999.9


def test_a_body_that_is_not_an_object_is_400(api, session, member):
    response = api.as_(member).post(scores_url(session), [1, 2], format="json")
    assert response.status_code == 400


def test_closing_and_closed_sessions_refuse_scores_with_409(api, make_session, host, chart, clock):
    closing = make_session(host)
    closed = make_session(host)
    client = api.as_(host)
    client.delete(f"/api/v1/sessions/{closing.uid}?closeAfter=60")
    client.delete(f"/api/v1/sessions/{closed.uid}?closeAfter=0")

    while_closing = client.post(scores_url(closing), {"chart": chart.pk, "value": 1}, format="json")
    when_closed = client.post(scores_url(closed), {"chart": chart.pk, "value": 1}, format="json")
    clock.advance(seconds=61)  # closing runs out: closed by time, before any sweeper
    after_closing = client.post(scores_url(closing), {"chart": chart.pk, "value": 1}, format="json")

    assert (while_closing.status_code, when_closed.status_code, after_closing.status_code) == (409, 409, 409)
    assert while_closing.json()["code"] == "not_accepting_scores"
    assert while_closing.json()["sessionStatus"] == "closing"
    assert when_closed.json()["sessionStatus"] == "closed"
    assert after_closing.json()["sessionStatus"] == "closed"
    assert not Score.objects.exists()


def test_400_comes_before_409(api, make_session, host, chart):
    closed = make_session(host)
    api.as_(host).delete(f"/api/v1/sessions/{closed.uid}?closeAfter=0")

    response = api.post(scores_url(closed), {"chart": chart.pk + 1, "value": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_chart"


def test_in_progress_sessions_take_scores(api, make_session, host, chart):
    playing = make_session(host, status="in_progress")
    response = api.as_(host).post(scores_url(playing), {"chart": chart.pk, "value": 1}, format="json")
    assert response.status_code == 201


def test_a_score_is_activity_it_pushes_the_idle_deadline_back(api, make_session, host, chart, clock):
    playing = make_session(host, idle_timeout=60)
    client = api.as_(host)

    clock.advance(seconds=50)
    client.post(scores_url(playing), {"chart": chart.pk, "value": 1}, format="json")
    clock.advance(seconds=50)  # 100 s after creation, 50 s after the score
    still_open = client.get(f"/api/v1/sessions/{playing.uid}").json()
    clock.advance(seconds=11)
    idle = client.get(f"/api/v1/sessions/{playing.uid}").json()

    assert still_open["status"] == "open"
    assert still_open["version"] == 0
    assert idle["status"] == "closed"


def test_submitting_costs_a_fixed_number_of_queries(api, session, member, chart, django_assert_num_queries):
    client = api.as_(as_token(member))
    ScoreFactory.create_batch(5, session=session, player=member, chart=chart)
    savepoints = 2 if connection.features.uses_savepoints else 0
    # the session row (visibility), the locked row, the chart, the insert, the idle deadline,
    # the event (score.submitted), the score read back; plus the service's savepoint and its release
    with django_assert_num_queries(7 + savepoints):
        response = client.post(scores_url(session), {"chart": chart.pk, "value": 1}, format="json")
    assert response.status_code == 201


# --- reading a session with its scores ------------------------------------------------------


def test_a_session_is_read_with_its_scores_and_only_the_songs_and_charts_played(api, session, host, member, outsider):
    song = SongFactory(title="Paranoia", artist="180", bpm=180)
    easy, hard = ChartFactory(song=song, difficulty="EASY", level=5), ChartFactory(song=song, difficulty="HARD")
    other = ChartFactory(difficulty="EXPERT", level=13.5)
    ChartFactory(song=song, difficulty="UNPLAYED")
    SongFactory(title="Never played")
    t0 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    late = ScoreFactory(session=session, player=member, chart=hard, value=Decimal("9.5"), time_achieved=t0)
    early = ScoreFactory(
        session=session, player=host, chart=other, value=1000, grade="S", time_achieved=t0 - timedelta(hours=1)
    )
    also = ScoreFactory(session=session, player=host, chart=easy, value=1, time_achieved=t0 + timedelta(minutes=1))
    ScoreFactory(session=GameSession.objects.create(), player=host, chart=ChartFactory(), time_achieved=t0)

    response = api.as_(outsider).get(scores_url(session))  # a public session: anyone reads it

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"session", "scores", "songs", "charts", "user"}
    assert body["session"] == api.get(f"/api/v1/sessions/{session.uid}").json()
    assert [s["id"] for s in body["scores"]] == [early.pk, late.pk, also.pk]  # in the order achieved
    assert body["scores"][0] == {
        "id": early.pk,
        "session": str(session.uid),
        "player": str(host.uid),
        "chart": other.pk,
        "song": other.song_id,
        "value": 1000,
        "grade": "S",
        "lamp": None,
        "data": {},
        "timeAchieved": "2026-11-22T17:00:00.000Z",
    }
    assert body["scores"][1]["value"] == 9.5
    assert [c["id"] for c in body["charts"]] == sorted([easy.pk, hard.pk, other.pk])
    assert [s["id"] for s in body["songs"]] == sorted([song.pk, other.song_id])
    assert body["songs"][0]["title"] == "Paranoia"
    assert body["user"] == {"uid": str(host.uid), "username": "host"}  # nothing private


def test_user_is_the_current_host_after_a_hand_over(api, session, host, member):
    session_leave(session_id=session.pk, actor=host)
    body = api.as_(member).get(scores_url(session)).json()
    assert body["user"] == {"uid": str(member.uid), "username": "member"}


def test_user_of_a_system_session_is_its_creator(api, game_server, member):
    system = session_create(actor=game_server, values={"host_uid": None, "users": [str(member.uid)]})

    body = api.as_(member).get(scores_url(system)).json()

    assert body["session"]["hostUid"] is None
    assert body["user"] == {"uid": str(game_server.uid), "username": "game-server"}


def test_a_session_without_scores_reads_empty(api, session, member):
    body = api.as_(member).get(scores_url(session)).json()
    assert (body["scores"], body["songs"], body["charts"]) == ([], [], [])


def test_a_private_session_with_scores_is_read_by_its_members_and_session_star(api, make_session, host, game_server):
    private = make_session(host, visibility="private")
    ScoreFactory(session=private, player=host)

    assert api.as_(host).get(scores_url(private)).status_code == 200
    assert api.as_(game_server).get(scores_url(private)).status_code == 200


@pytest.mark.parametrize("count", [1, 10_000])
def test_reading_scores_costs_four_queries_for_1_or_10000_scores(
    api, session, member, count, django_assert_num_queries
):
    charts = ChartFactory.create_batch(3)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    Score.objects.bulk_create(
        Score(session=session, player=member, chart=charts[i % 3], value=i, time_achieved=t0 + timedelta(seconds=i))
        for i in range(count)
    )
    client = api.as_(as_token(member))
    # the session row with its host and creator, the scores, their charts, their songs
    with django_assert_num_queries(4):
        response = client.get(scores_url(session))
    body = response.json()
    assert len(body["scores"]) == count
    assert len(body["charts"]) == min(count, 3)
    assert body["scores"][-1]["value"] == count - 1


def test_the_schema_documents_the_score_routes(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    scores = schema["paths"]["/api/v1/sessions/{uid}/scores"]
    assert scores["get"]["operationId"] == "sessions_scores_retrieve"
    assert scores["post"]["operationId"] == "sessions_scores_create"
    assert set(scores["post"]["responses"]) >= {"201", "400", "403", "404", "409"}
    assert schema["paths"]["/api/v1/scores/import"]["post"]["operationId"] == "scores_import"


# --- a session:* account that is a member -----------------------------------------------------


def test_a_session_star_member_scores_its_own_and_reports_another_members(api, make_session, host, game_server, chart):
    session = make_session(host)
    session_join(session_id=session.pk, actor=game_server)  # a member here, not in `other`
    other = make_session(host)

    as_member = api.as_(game_server).post(
        f"/api/v1/sessions/{session.uid}/scores", {"chart": chart.pk, "value": 1}, format="json"
    )
    for_host = api.post(
        f"/api/v1/sessions/{other.uid}/scores", {"chart": chart.pk, "value": 2, "player": str(host.uid)}, format="json"
    )

    assert (as_member.status_code, as_member.json()["player"]) == (201, str(game_server.uid))
    assert (for_host.status_code, for_host.json()["player"]) == (201, str(host.uid))
