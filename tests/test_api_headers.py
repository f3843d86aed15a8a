"""Headers of API responses: no shared caching of per-caller answers (ETag revalidation still
answers 304), no content sniffing, and CORS for the origins CORS_ALLOWED_ORIGINS lists, with
preflights answered without a token."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

GAME = "https://game.example"
ELSEWHERE = "https://evil.example"
CLIENT_HEADERS = ("authorization", "content-type", "if-match", "if-none-match", "x-session-password", "x-request-id")


def test_api_responses_are_private_revalidated_and_never_sniffed(api, host, session):
    from rest_framework.test import APIClient

    listed = api.as_(host).get("/api/v1/sessions")
    refused = APIClient().get("/api/v1/sessions")

    assert (listed.status_code, refused.status_code) == (200, 401)

    for response in (listed, refused):
        assert response["Cache-Control"] == "private, no-cache"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_revalidation_by_etag_still_answers_304(api, host, session):
    first = api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    again = api.get(f"/api/v1/sessions/{session.uid}", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-cache"
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "private, no-cache"


def test_pages_outside_the_api_keep_their_own_caching(client):
    assert "Cache-Control" not in client.get("/")


def preflight(api, origin: str, method: str = "PATCH"):
    return api.options(
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=", ".join(CLIENT_HEADERS),
    )


def test_a_preflight_from_an_allowed_origin_passes_without_a_token(api, settings):
    settings.CORS_ALLOWED_ORIGINS = [GAME, "https://other-game.example"]

    response = preflight(api, GAME)

    assert response.status_code in (200, 204)
    assert response["Access-Control-Allow-Origin"] == GAME
    allowed_headers = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert set(CLIENT_HEADERS) <= allowed_headers
    assert "PATCH" in response["Access-Control-Allow-Methods"]


def test_a_preflight_from_another_origin_gets_no_cors_headers(api, settings):
    settings.CORS_ALLOWED_ORIGINS = [GAME]

    response = preflight(api, ELSEWHERE)

    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Headers" not in response


def test_no_origin_is_allowed_by_default(api):
    from django.conf import settings

    assert settings.CORS_ALLOWED_ORIGINS == []
    assert "Access-Control-Allow-Origin" not in preflight(api, GAME)


def test_an_allowed_origin_reads_the_headers_clients_need(api, host, session, settings):
    settings.CORS_ALLOWED_ORIGINS = [GAME]

    response = api.as_(host).get(f"/api/v1/sessions/{session.uid}", HTTP_ORIGIN=GAME)
    elsewhere = api.get(f"/api/v1/sessions/{session.uid}", HTTP_ORIGIN=ELSEWHERE)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == GAME
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"etag", "link", "retry-after", "x-request-id"}
    assert "origin" in response["Vary"].lower()
    assert "Access-Control-Allow-Origin" not in elsewhere


def test_a_malformed_origin_setting_stops_the_checks(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.CORS_ALLOWED_ORIGINS = ["game.example"]  # no scheme

    with pytest.raises(SystemCheckError, match="CORS_ALLOWED_ORIGINS"):
        call_command("check")
