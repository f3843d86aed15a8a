"""Audit of issue 4 (scores, catalog, naming, imports): the behaviours the other test files left
unshown. Each test names the sentence of the issue it holds the code to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from players_app.services import default_group
from sessions_app import services
from sessions_app.models import PERM_CUSTOMISE, GameSession, Score
from sessions_project.times import iso

from .factories import ChartFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # well in the past: imports are past play
GAP = timedelta(hours=2)  # the default SCORE_IMPORT_GAP
IMPORT = "/api/v1/scores/import"


def at(**delta) -> datetime:
    return T0 + timedelta(**delta)


@pytest.fixture
def chart(db):
    return ChartFactory()


@pytest.fixture
def send(api, chart):
    """send(player, [(clientId, time), ...]) -> the response of one import of those scores."""

    def send(player, scores):
        items = [
            {"clientId": client_id, "chart": chart.pk, "value": 100 + i, "timeAchieved": iso(when)}
            for i, (client_id, when) in enumerate(scores)
        ]
        return api.as_(player).post(IMPORT, {"scores": items}, format="json")

    return send


def imported_uid(response) -> str:
    assert response.status_code == 200, response.json()
    [group] = response.json()["sessions"]
    return group["session"]


def imported(player) -> list[GameSession]:
    return list(GameSession.objects.filter(creator=player, is_imported=True).order_by("date_created"))


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

    response = api.as_(member).post(IMPORT, {"scores": items}, format="json")

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


# --- customise_session through a real token (the production path) --------------------------


def token_for(api, username: str) -> str:
    response = api.post("/api/v1/auth/token", {"username": username, "password": "pass-word-123"}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["access"]


def test_a_token_issued_after_customise_session_is_taken_from_players_is_refused(api, make_session, host):
    session = make_session(host)
    url = f"/api/v1/sessions/{session.uid}"
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token_for(api, 'host')}")
    assert api.patch(url, {"name": "Friday league"}, format="json").status_code == 200

    default_group().permissions.remove(*default_group().permissions.filter(codename=PERM_CUSTOMISE))
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token_for(api, 'host')}")
    refused = api.patch(url, {"name": "Saturday league"}, format="json")
    allowed = api.patch(url, {"data": {"map": "dust"}}, format="json")  # not customisation

    assert (refused.status_code, refused.json()["code"]) == (403, "customise_forbidden")
    assert allowed.status_code == 200
    assert GameSession.objects.get(pk=session.pk).name == "Friday league"


def test_a_session_star_member_scores_its_own_and_reports_another_members(api, make_session, host, game_server, chart):
    session = make_session(host)
    services.session_join(session_id=session.pk, actor=game_server)  # a member here, not in `other`
    other = make_session(host)

    as_member = api.as_(game_server).post(
        f"/api/v1/sessions/{session.uid}/scores", {"chart": chart.pk, "value": 1}, format="json"
    )
    for_host = api.post(
        f"/api/v1/sessions/{other.uid}/scores", {"chart": chart.pk, "value": 2, "player": str(host.uid)}, format="json"
    )

    assert (as_member.status_code, as_member.json()["player"]) == (201, str(game_server.uid))
    assert (for_host.status_code, for_host.json()["player"]) == (201, str(host.uid))


# --- "the OpenAPI schema describes each route" ----------------------------------------------


def test_the_schema_documents_customisation_highlight_search_and_the_import(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    body = components["SessionInputRequest"]["properties"]
    assert (body["name"]["minLength"], body["name"]["maxLength"]) == (3, 80)
    assert (body["desc"]["minLength"], body["desc"]["maxLength"]) == (3, 120)
    assert body["highlight"]["type"] == "boolean"
    assert {"name", "desc", "highlight"} <= set(components["Session"]["properties"])
    listed = {p["name"] for p in schema["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert {"highlight", "search"} <= listed
    imported = schema["paths"]["/api/v1/scores/import"]["post"]
    assert {"200", "400", "401"} <= set(imported["responses"])
    assert imported["requestBody"]["content"]["application/json"]["examples"]
