"""The session `type` member (seed 003's template type): set on create and by update,
1 to 128 characters, default `default`, sortable and filterable in lists and counts."""

from __future__ import annotations

import json

import pytest

from sessions_app.models import GameSession

pytestmark = pytest.mark.django_db


def test_type_defaults_to_default(api, host):
    response = api.as_(host).post("/api/v1/sessions", {}, format="json")
    assert response.status_code == 201
    assert response.json()["type"] == "default"


def test_type_is_set_on_create_and_by_update(api, host):
    created = api.as_(host).post("/api/v1/sessions", {"type": "ranked-4v4"}, format="json")
    assert created.json()["type"] == "ranked-4v4"
    uid = created.json()["uid"]

    updated = api.as_(host).patch(f"/api/v1/sessions/{uid}", {"type": "casual"}, format="json")

    assert updated.status_code == 200
    assert updated.json()["type"] == "casual"
    assert updated.json()["version"] == created.json()["version"] + 1
    assert GameSession.objects.get(uid=uid).type == "casual"


@pytest.mark.parametrize(("value", "code"), [("", "blank"), ("x" * 129, "max_length"), (None, "null")])
def test_an_invalid_type_is_400_naming_it(api, host, value, code):
    response = api.as_(host).post("/api/v1/sessions", {"type": value}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("type", code)
    assert not GameSession.objects.exists()


def test_a_type_of_128_characters_is_accepted(api, host):
    response = api.as_(host).post("/api/v1/sessions", {"type": "t" * 128}, format="json")
    assert response.status_code == 201


def test_only_the_host_changes_the_type(api, host, member, make_session):
    session = make_session(host)
    response = api.as_(member).patch(f"/api/v1/sessions/{session.uid}", {"type": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "not_host")


def test_sessions_filter_by_type_in_list_and_count(api, host, make_session):
    ranked = [make_session(host, type="ranked") for _ in range(2)]
    make_session(host, type="casual")

    listed = api.as_(host).get("/api/v1/sessions?type=ranked")
    counted = api.as_(host).get("/api/v1/sessions/count?type=ranked")
    nothing = api.as_(host).get("/api/v1/sessions/count?type=none")

    assert sorted(s["uid"] for s in listed.json()) == sorted(str(s.uid) for s in ranked)
    assert counted.json() == {"count": 2}
    assert nothing.json() == {"count": 0}


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sessions_sort_by_type(api, host, make_session, direction):
    for name in ("casual", "ranked", "arcade"):
        make_session(host, type=name)
    response = api.as_(host).get("/api/v1/sessions", {"sort": json.dumps({"type": direction})})
    assert response.status_code == 200
    expected = ["arcade", "casual", "ranked"]
    assert [s["type"] for s in response.json()] == (expected if direction == "ASC" else expected[::-1])
