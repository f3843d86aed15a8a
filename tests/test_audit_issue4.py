"""Audit of issue 4 (scores, catalog, naming, imports): the behaviours the other test files left
unshown. Each test names the sentence of the issue it holds the code to."""

from __future__ import annotations

import pytest

from players_app.services import default_group
from sessions_app.models import PERM_CUSTOMISE, GameSession
from sessions_app.services.membership import session_join

from .factories import ChartFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chart(db):
    return ChartFactory()


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
