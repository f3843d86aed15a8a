"""Failures outside the caller's control still answer in the one error format."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from sessions_app.services import membership

pytestmark = pytest.mark.django_db


def test_an_unavailable_database_is_503_with_retry_after(api, host, make_session, monkeypatch):
    session = make_session(host)

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(membership, "session_leave", database_down)

    response = api.as_(host).post(f"/api/v1/sessions/{session.uid}/leave")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"


def test_a_bug_is_a_json_500_under_the_api_never_a_traceback(host, make_session, monkeypatch):
    session = make_session(host)

    def bug(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(membership, "session_leave", bug)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(host)

    response = client.post(f"/api/v1/sessions/{session.uid}/leave")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://sessions.example/problems/server_error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "server_error",
        "requestId": response["X-Request-ID"],
    }
    assert "Traceback" not in response.content.decode()
