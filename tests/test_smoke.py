"""A first pass over the sessions resource with a real JWT."""

import pytest

pytestmark = pytest.mark.django_db


def test_token_create_join_leave_with_real_jwt(api, host, member):
    token = api.post("/api/v1/auth/token", {"username": "host", "password": "pass-word-123"}, format="json")
    assert token.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"jwt {token.json()['access']}")
    created = api.post("/api/v1/sessions", {"numTeams": 2, "teamSize": 2}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["users"] == [str(host.uid)]
    assert body["version"] == 0
    assert created["ETag"] == f'"{body["uid"]}-0"'

    api.credentials()
    api.force_authenticate(member)
    joined = api.post(f"/api/v1/sessions/{body['uid']}/join", format="json")
    assert joined.status_code == 200, joined.json()
    assert joined.json()["users"] == [str(host.uid), str(member.uid)]
    assert joined.json()["version"] == 1
    assert [t["players"] for t in joined.json()["teams"]] == [[str(host.uid)], [str(member.uid)]]

    left = api.get(f"/api/v1/sessions/{body['uid']}/leave")
    assert left.status_code == 200
    assert left.json()["users"] == [str(host.uid)]
    assert left.json()["version"] == 2


def test_clock_moves_a_closing_session_to_closed(api, host, make_session, clock):
    session = make_session(host)
    closing = api.as_(host).delete(f"/api/v1/sessions/{session.uid}?closeAfter=30")
    assert closing.json()["status"] == "closing"
    clock.advance(seconds=31)
    body = api.get(f"/api/v1/sessions/{session.uid}").json()
    assert body["status"] == "closed"
    assert body["version"] == closing.json()["version"]
