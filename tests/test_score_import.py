"""POST /api/v1/scores/import: a batch of a player's past scores, grouped into imported sessions
at gaps of SCORE_IMPORT_GAP (two hours) or more; "within" the gap means strictly shorter."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from sessions_app.models import GameSession, Score
from sessions_project.times import iso

from .conftest import as_token
from .factories import ChartFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # well in the past: imports are past play
GAP = timedelta(hours=2)  # the default SCORE_IMPORT_GAP
URL = "/api/v1/scores/import"


def at(**delta) -> datetime:
    return T0 + timedelta(**delta)


@pytest.fixture
def chart(db):
    return ChartFactory()


@pytest.fixture
def send(api, chart):
    """send(player, [(clientId, time), ...]) -> the response of one import of those scores."""

    def send(player, scores, **extra):
        items = [
            {"clientId": client_id, "chart": chart.pk, "value": 100 + i, "timeAchieved": iso(when), **extra}
            for i, (client_id, when) in enumerate(scores)
        ]
        return api.as_(player).post(URL, {"scores": items}, format="json")

    return send


def imported(player):
    return list(GameSession.objects.filter(creator=player, is_imported=True).order_by("date_created"))


# --- grouping -------------------------------------------------------------------------------


def test_one_group_becomes_a_closed_private_session_of_the_importer(api, send, member, outsider):
    response = send(member, [("a", at(minutes=30)), ("b", at()), ("c", at(minutes=10))])

    assert response.status_code == 200, response.json()
    [session] = imported(member)
    assert response.json() == {
        "sessions": [{"session": str(session.uid), "type": "created", "merged": []}],
        "skipped": 0,
    }
    document = api.as_(member).get(f"/api/v1/sessions/{session.uid}").json()
    assert document["status"] == "closed"
    assert document["visibility"] == "private"
    assert document["hostUid"] == str(member.uid)
    assert document["users"] == [str(member.uid)]
    assert document["name"] == "Imported session 2025-06-01 12:00 UTC"
    assert document["dateCreated"] == iso(at())  # its first score
    assert document["closedAt"] == iso(at(minutes=30))  # its last score
    assert document["idleTimeout"] == 0
    assert document["version"] == 0
    assert sorted(Score.objects.filter(session=session).values_list("client_id", flat=True)) == ["a", "b", "c"]
    assert set(Score.objects.values_list("player_id", flat=True)) == {member.pk}
    # A record of past play: nobody else sees it, nobody joins it, no live score goes in.
    assert api.as_(outsider).get(f"/api/v1/sessions/{session.uid}").status_code == 404
    live = api.as_(member).post(f"/api/v1/sessions/{session.uid}/scores", {"chart": 1, "value": 1}, format="json")
    assert live.status_code in (400, 409)
    assert api.post(f"/api/v1/sessions/{session.uid}/join").status_code == 409


def test_a_gap_just_under_the_limit_keeps_one_group(send, member):
    response = send(member, [("a", at()), ("b", at() + GAP - timedelta(seconds=1))])

    assert [s["type"] for s in response.json()["sessions"]] == ["created"]
    assert len(imported(member)) == 1


@pytest.mark.parametrize("gap", [GAP, GAP + timedelta(seconds=1)], ids=["exactly", "just-over"])
def test_a_gap_of_the_limit_or_more_splits_the_batch(send, member, gap):
    response = send(member, [("late", at() + gap), ("early", at())])  # any order: grouped by time

    assert response.status_code == 200
    assert [s["type"] for s in response.json()["sessions"]] == ["created", "created"]
    early, late = imported(member)
    assert [s["session"] for s in response.json()["sessions"]] == [str(early.uid), str(late.uid)]
    assert list(early.scores.values_list("client_id", flat=True)) == ["early"]
    assert list(late.scores.values_list("client_id", flat=True)) == ["late"]
    assert early.closed_at == at()
    assert late.date_created == late.closed_at == at() + gap


def test_a_chain_of_short_gaps_is_one_group_however_long(send, member):
    scores = [(f"s{i}", at(minutes=90 * i)) for i in range(5)]  # 6 hours, no gap of 2 hours

    response = send(member, scores)

    assert len(response.json()["sessions"]) == 1
    [session] = imported(member)
    assert (session.date_created, session.closed_at) == (at(), at(minutes=360))


def test_a_group_just_within_the_gap_after_an_imported_session_is_appended(api, send, member):
    first = send(member, [("a", at()), ("b", at(minutes=30))]).json()["sessions"][0]["session"]

    response = send(member, [("c", at(minutes=30) + GAP - timedelta(seconds=1))])

    assert response.json() == {"sessions": [{"session": first, "type": "appended", "merged": []}], "skipped": 0}
    [session] = imported(member)
    assert session.scores.count() == 3
    document = api.as_(member).get(f"/api/v1/sessions/{first}").json()
    assert document["closedAt"] == iso(at(minutes=30) + GAP - timedelta(seconds=1))
    assert document["dateCreated"] == iso(at())
    assert document["version"] == 1  # closedAt changed: the document did


def test_a_group_a_full_gap_after_an_imported_session_makes_a_new_one(send, member):
    send(member, [("a", at()), ("b", at(minutes=30))])

    response = send(member, [("c", at(minutes=30) + GAP)])

    assert [s["type"] for s in response.json()["sessions"]] == ["created"]
    assert len(imported(member)) == 2


def test_a_group_just_before_an_imported_session_is_appended_and_moves_its_start(send, member):
    send(member, [("a", at()), ("b", at(minutes=30))])

    response = send(member, [("z", at() - GAP + timedelta(seconds=1))])

    assert response.json()["sessions"][0]["type"] == "appended"
    [session] = imported(member)
    assert session.date_created == at() - GAP + timedelta(seconds=1)
    assert session.closed_at == at(minutes=30)
    assert session.name == "Imported session 2025-06-01 12:00 UTC"  # a name, once given, stays


def test_a_group_inside_an_imported_session_leaves_its_version(send, member):
    send(member, [("a", at()), ("b", at(minutes=90))])

    response = send(member, [("c", at(minutes=45))])

    assert response.json()["sessions"][0]["type"] == "appended"
    [session] = imported(member)
    assert session.scores.count() == 3
    assert session.version == 0  # scores are not in the document; dateCreated and closedAt stay


def test_a_group_within_the_gap_of_two_sessions_merges_them_into_the_earliest(api, send, member):
    a = send(member, [("a1", at()), ("a2", at(minutes=30))]).json()["sessions"][0]["session"]
    b = send(member, [("b1", at(hours=4)), ("b2", at(hours=4, minutes=30))]).json()["sessions"][0]["session"]
    GameSession.objects.filter(uid=b).update(highlight=True)

    # 1 h 45 min after a's last score, 1 h 45 min before b's first
    response = send(member, [("m", at(hours=2, minutes=15))])

    assert response.json() == {"sessions": [{"session": a, "type": "appended", "merged": [b]}], "skipped": 0}
    assert not GameSession.objects.filter(uid=b).exists()
    [session] = imported(member)
    assert str(session.uid) == a
    assert sorted(session.scores.values_list("client_id", flat=True)) == ["a1", "a2", "b1", "b2", "m"]
    document = api.as_(member).get(f"/api/v1/sessions/{a}").json()
    assert document["closedAt"] == iso(at(hours=4, minutes=30))
    assert document["highlight"] is True  # the absorbed session was highlighted
    assert document["version"] == 1


def test_one_batch_appends_to_one_session_creates_another_and_merges_two(send, member):
    a = send(member, [("a", at())]).json()["sessions"][0]["session"]
    b = send(member, [("b", at(hours=10))]).json()["sessions"][0]["session"]
    c = send(member, [("c", at(hours=13))]).json()["sessions"][0]["session"]

    response = send(
        member,
        [
            ("near-a", at(hours=1)),  # within a
            ("alone", at(hours=5)),  # 4 h from a, 5 h from b: a new session
            ("between-b-c", at(hours=11, minutes=30)),  # 1.5 h from b and from c: merges them
        ],
    )

    body = response.json()
    alone = GameSession.objects.get(scores__client_id="alone")
    assert body == {
        "sessions": [
            {"session": a, "type": "appended", "merged": []},
            {"session": str(alone.uid), "type": "created", "merged": []},
            {"session": b, "type": "appended", "merged": [c]},
        ],
        "skipped": 0,
    }
    assert len(imported(member)) == 3


def test_the_gap_is_a_setting(send, member, settings):
    settings.SCORE_IMPORT_GAP = 600

    response = send(member, [("a", at()), ("b", at(minutes=9)), ("c", at(minutes=19))])

    assert [s["type"] for s in response.json()["sessions"]] == ["created", "created"]


def test_only_the_players_own_imported_sessions_are_appended_to(send, make_session, member, outsider):
    send(outsider, [("a", at())])
    live = make_session(member)  # the player's own live session is not a record of past play

    response = send(member, [("a", at(minutes=10))])

    assert response.json()["sessions"][0]["type"] == "created"
    assert len(imported(member)) == 1
    assert len(imported(outsider)) == 1
    assert not live.scores.exists()


def test_times_without_an_offset_are_utc_and_offsets_are_honoured(api, member, chart):
    items = [
        {"clientId": "naive", "chart": chart.pk, "value": 1, "timeAchieved": "2025-06-01T12:00:00"},
        {"clientId": "tokyo", "chart": chart.pk, "value": 1, "timeAchieved": "2025-06-01T21:30:00+09:00"},
    ]

    api.as_(member).post(URL, {"scores": items}, format="json")

    [session] = imported(member)
    assert (session.date_created, session.closed_at) == (at(), at(minutes=30))


# --- re-sent imports ------------------------------------------------------------------------


def test_a_resent_import_skips_every_score_and_writes_nothing(send, member):
    batch = [("a", at()), ("b", at(minutes=5)), ("c", at(minutes=10))]
    send(member, batch)

    again = send(member, batch)

    assert again.status_code == 200
    assert again.json() == {"sessions": [], "skipped": 3}
    assert Score.objects.count() == 3
    assert len(imported(member)) == 1
    assert imported(member)[0].version == 0


def test_a_partly_resent_import_imports_only_the_new_scores(send, member):
    send(member, [("a", at()), ("b", at(minutes=5))])

    response = send(member, [("a", at()), ("b", at(minutes=5)), ("c", at(minutes=20))])

    assert response.json()["skipped"] == 2
    assert response.json()["sessions"][0]["type"] == "appended"
    assert sorted(Score.objects.values_list("client_id", flat=True)) == ["a", "b", "c"]


def test_a_client_id_is_unique_per_player_not_across_players(send, member, outsider):
    send(member, [("a", at())])

    response = send(outsider, [("a", at())])

    assert response.json()["skipped"] == 0
    assert Score.objects.filter(client_id="a").count() == 2


# --- refusals: all or nothing ---------------------------------------------------------------


def test_scores_without_a_time_are_refused_each_with_its_reason(api, member, chart):
    items = [
        {"clientId": "a", "chart": chart.pk, "value": 1},
        {"clientId": "b", "chart": chart.pk, "value": 1, "timeAchieved": iso(at())},
        {"clientId": "c", "chart": chart.pk, "value": 1, "timeAchieved": None},
    ]

    response = api.as_(member).post(URL, {"scores": items}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_scores"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("scores[0].timeAchieved", "required"),
        ("scores[2].timeAchieved", "required"),
    ]
    assert all("time it was achieved" in e["message"] for e in body["errors"])
    assert not Score.objects.exists()
    assert not GameSession.objects.exists()


def test_a_bad_batch_is_refused_whole_with_every_problem_listed(api, send, member, chart):
    send(member, [("old", at())])  # nothing of the bad batch below may touch this
    good = {"chart": chart.pk, "value": 1, "timeAchieved": iso(at(minutes=5))}
    items = [
        {**good, "clientId": "ok-1"},
        {**good},  # no clientId
        {**good, "clientId": "ok-1"},  # the same clientId as scores[0]
        {**good, "clientId": "x", "chart": chart.pk + 100},  # no such chart
        {**good, "clientId": "y", "value": "100", "timeAchieved": "not a time"},  # two problems
        "a string",
        {**good, "clientId": "z", "value": 1.0000001, "data": [], "lamp": 5},
        {**good, "clientId": "ok-2"},
    ]

    response = api.as_(member).post(URL, {"scores": items}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "6 of 8 scores have problems; nothing was imported."
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("scores[1].clientId", "required"),
        ("scores[2].clientId", "duplicate_client_id"),
        ("scores[3].chart", "unknown_chart"),
        ("scores[4].value", "invalid"),
        ("scores[4].timeAchieved", "invalid"),
        ("scores[5]", "not_an_object"),
        ("scores[6].value", "invalid"),
        ("scores[6].lamp", "invalid"),
        ("scores[6].data", "not_object"),
    ]
    assert "scores[0]" in body["errors"][1]["message"]
    assert list(Score.objects.values_list("client_id", flat=True)) == ["old"]
    assert imported(member)[0].version == 0


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("0001-01-01T00:00:00Z", "out_of_range"),
        ("1969-12-31T23:59:59Z", "out_of_range"),
        ("9999-12-31T23:59:59Z", "out_of_range"),
        ("IN-TWO-DAYS", "out_of_range"),
        ("2025-13-01T00:00:00Z", "invalid"),
        ("2025-06-01", "invalid"),
        (1748779200, "invalid"),  # a time is an ISO 8601 string
    ],
)
def test_times_out_of_range_or_malformed_are_refused(api, member, chart, clock, when, code):
    if when == "IN-TWO-DAYS":
        when = iso(clock.now + timedelta(days=2))
    items = [{"clientId": "a", "chart": chart.pk, "value": 1, "timeAchieved": when}]

    response = api.as_(member).post(URL, {"scores": items}, format="json")

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("scores[0].timeAchieved", code)]
    assert not GameSession.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "scores"), ({"scores": {"a": 1}}, "scores"), ({"scores": [{}] * 10_001}, "scores")],
    ids=["missing", "not-a-list", "too-many"],
)
def test_a_malformed_batch_is_400(api, member, body, field):
    response = api.as_(member).post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_an_empty_batch_imports_nothing(api, member):
    response = api.as_(member).post(URL, {"scores": []}, format="json")
    assert response.json() == {"sessions": [], "skipped": 0}


def test_importing_needs_authentication(api):
    assert api.post(URL, {"scores": []}, format="json").status_code == 401


# --- cost and concurrency -------------------------------------------------------------------


def test_an_import_costs_a_fixed_number_of_queries(api, chart, member, django_assert_num_queries):
    client = api.as_(as_token(member))
    items = [
        {"clientId": f"c{i}", "chart": chart.pk, "value": i, "timeAchieved": iso(at(minutes=i))} for i in range(50)
    ]
    savepoints = 2 if connection.features.uses_savepoints else 0
    # the charts; the player's row locked; the clientIds already imported; the imported sessions
    # near the batch; creating one session through services.session_create (insert, with its
    # users, teams and invites rendered in memory; its member; the importer's sessions-view
    # stamp; its session.created event), then closing it (and its session.closed event); the
    # scores (one insert for 50)
    with django_assert_num_queries(11 + 2 * savepoints):
        created = client.post(URL, {"scores": items}, format="json")
    # re-sent: the charts, the player's row, the clientIds, and nothing else
    with django_assert_num_queries(3 + savepoints):
        resent = client.post(URL, {"scores": items}, format="json")
    assert created.json()["sessions"][0]["type"] == "created"
    assert resent.json()["skipped"] == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_twice_at_once_is_imported_once(chart, member):
    from sessions_app.services.scores import scores_import

    batch = [
        {"clientId": f"c{i}", "chart": chart.pk, "value": i, "timeAchieved": iso(at(minutes=i))} for i in range(20)
    ]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(scores_import(actor=member, scores=batch))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r.skipped for r in results) == [0, 20]
    assert Score.objects.count() == 20
    assert len(imported(member)) == 1


# --- merging, spans and refusals -----------------------------------------------------------


def imported_uid(response) -> str:
    assert response.status_code == 200, response.json()
    [group] = response.json()["sessions"]
    return group["session"]


# --- "a group within two hours of two or more merges them into the earliest" -----------------


def test_a_group_bridging_three_imported_sessions_merges_them_all_into_the_earliest(send, member):
    a = imported_uid(send(member, [("a", at())]))
    b = imported_uid(send(member, [("b", at(hours=3, minutes=30))]))
    c = imported_uid(send(member, [("c", at(hours=7))]))
    assert len(imported(member)) == 3  # 3.5 h apart: three sessions

    # One group (gaps of 1 h 40 min) from 1:50 to 5:10: within 2 h of a (0:00), b and c (7:00).
    response = send(
        member, [("x1", at(hours=1, minutes=50)), ("x2", at(hours=3, minutes=30)), ("x3", at(hours=5, minutes=10))]
    )

    assert response.json() == {"sessions": [{"session": a, "type": "appended", "merged": [b, c]}], "skipped": 0}
    [merged] = imported(member)
    assert str(merged.uid) == a
    assert (merged.date_created, merged.closed_at) == (at(), at(hours=7))
    assert sorted(merged.scores.values_list("client_id", flat=True)) == ["a", "b", "c", "x1", "x2", "x3"]
    assert not GameSession.objects.filter(uid__in=[b, c]).exists()
    assert Score.objects.count() == 6  # moved, none lost, none doubled


def test_a_session_exactly_the_gap_away_is_not_merged(send, member):
    a = imported_uid(send(member, [("a", at())]))
    b = imported_uid(send(member, [("b", at(hours=3))]))

    # 1 h after a (within), exactly 2 h before b: "within" is strictly shorter, so b stays.
    response = send(member, [("m", at(hours=1))])

    assert response.json()["sessions"] == [{"session": a, "type": "appended", "merged": []}]
    assert {str(s.uid) for s in imported(member)} == {a, b}
    assert list(GameSession.objects.get(uid=b).scores.values_list("client_id", flat=True)) == ["b"]


def test_one_import_extending_a_session_at_both_ends_moves_its_version_once(api, send, member):
    uid = imported_uid(send(member, [("a", at()), ("b", at(hours=1, minutes=30)), ("c", at(hours=3))]))

    # Two groups (4 h apart), one just before the session and one just after it.
    response = send(member, [("early", at(hours=-1)), ("late", at(hours=4))])

    assert response.json()["sessions"] == [
        {"session": uid, "type": "appended", "merged": []},
        {"session": uid, "type": "appended", "merged": []},
    ]
    document = api.as_(member).get(f"/api/v1/sessions/{uid}").json()
    assert (document["dateCreated"], document["closedAt"]) == (iso(at(hours=-1)), iso(at(hours=4)))
    assert document["version"] == 1  # one write for the whole batch


# --- "A batch is all-or-nothing" ------------------------------------------------------------


def test_a_bad_batch_that_also_resends_scores_writes_and_skips_nothing(api, send, member, chart):
    uid = imported_uid(send(member, [("old", at())]))
    items = [
        {"clientId": "old", "chart": chart.pk, "value": 1, "timeAchieved": iso(at())},  # already imported
        {"clientId": "new", "chart": chart.pk, "value": 1, "timeAchieved": iso(at(minutes=10))},  # fine
        {"clientId": "bad", "chart": chart.pk, "value": 1},  # no time
    ]

    response = api.as_(member).post(URL, {"scores": items}, format="json")

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("scores[2].timeAchieved", "required")]
    assert list(Score.objects.values_list("client_id", flat=True)) == ["old"]
    assert GameSession.objects.get(uid=uid).version == 0


# --- "Imported sessions are records of past play ... only an import appends to them" ----------


def test_an_imported_session_takes_no_live_score_and_nothing_reopens_it(api, send, member, chart):
    uid = imported_uid(send(member, [("a", at())]))
    client = api.as_(member)

    live_score = client.post(f"/api/v1/sessions/{uid}/scores", {"chart": chart.pk, "value": 1}, format="json")
    reopen = client.patch(f"/api/v1/sessions/{uid}", {"status": "open"}, format="json")
    close_again = client.delete(f"/api/v1/sessions/{uid}?closeAfter=30")

    assert (live_score.status_code, live_score.json()["code"]) == (409, "not_accepting_scores")
    assert (reopen.status_code, reopen.json()["code"]) == (409, "invalid_transition")
    assert close_again.status_code == 409
    session = GameSession.objects.get(uid=uid)
    assert (session.status, session.version, session.scores.count()) == ("closed", 0, 1)


def test_the_user_of_an_imported_session_is_the_importer(api, send, member):
    uid = imported_uid(send(member, [("a", at())]))

    body = api.as_(member).get(f"/api/v1/sessions/{uid}/scores").json()

    assert body["user"] == {"uid": str(member.uid), "username": "member"}
    assert [s["player"] for s in body["scores"]] == [str(member.uid)]
