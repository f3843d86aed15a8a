"""Bounds on what a client may send: the request body (413 body_too_large, decided before it is
buffered) and each stored `data` object (400 data_too_large)."""

from __future__ import annotations

import io
import json

import pytest
from django.test import RequestFactory
from drf_spectacular.generators import SchemaGenerator

from sessions_app.models import Chart, GameSession, Score, Song
from sessions_project.middleware import RequestBodyLimitMiddleware

from .conftest import row
from .factories import ChartFactory, SongFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def data_of_size(size: int) -> dict:
    """A `data` object of exactly `size` bytes as compact JSON."""
    overhead = len('{"k":""}')
    return {"k": "x" * (size - overhead)}


def test_a_body_over_one_mebibyte_is_413_and_stores_nothing(api, host):
    response = api.as_(host).post("/api/v1/sessions", {"data": {"k": "x" * MiB}}, format="json")

    body = assert_problem(response, 413, "body_too_large")
    assert body["maxBytes"] == MiB
    assert GameSession.objects.count() == 0


def test_the_body_limit_is_a_setting(api, host, settings):
    settings.REQUEST_BODY_MAX_BYTES = 100

    refused = api.as_(host).post("/api/v1/sessions", {"name": "x" * 100}, format="json")
    taken = api.post("/api/v1/sessions", {"name": "abc"}, format="json")

    assert_problem(refused, 413, "body_too_large")
    assert taken.status_code == 201


def test_the_body_limit_comes_before_authentication(api):
    assert_problem(api.post("/api/v1/sessions", {"data": {"k": "x" * MiB}}, format="json"), 413, "body_too_large")


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def chunked_request(body: bytes):
    request = RequestFactory().generic("POST", "/api/v1/sessions", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"
    stream = CountingStream(body)
    request.META["wsgi.input"] = stream
    return request, stream


def test_a_chunked_body_is_read_no_further_than_the_limit(settings):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    request, stream = chunked_request(b"x" * 10 * MiB)

    response = RequestBodyLimitMiddleware(lambda request: pytest.fail("the view must not run"))(request)

    assert response.status_code == 413
    assert json.loads(response.content)["code"] == "body_too_large"
    assert stream.bytes_read == 1001


def test_a_chunked_body_within_the_limit_reaches_the_view(settings):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    request, _ = chunked_request(b'{"name": "abc"}')

    seen = RequestBodyLimitMiddleware(lambda request: request.read())(request)

    assert seen == b'{"name": "abc"}'


def test_session_data_up_to_16_kib_is_stored_and_one_byte_more_is_400(api, host):
    api.as_(host)

    taken = api.post("/api/v1/sessions", {"data": data_of_size(16 * 1024)}, format="json")
    refused = api.post("/api/v1/sessions", {"data": data_of_size(16 * 1024 + 1)}, format="json")

    assert taken.status_code == 201
    body = assert_problem(refused, 400, "data_too_large")
    assert body["errors"][0]["field"] == "data"
    assert GameSession.objects.count() == 1


def test_data_size_counts_utf8_bytes(api, host, session, settings):
    settings.DATA_MAX_BYTES = 20

    refused = api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"data": {"k": "é" * 7}}, format="json")

    assert_problem(refused, 400, "data_too_large")  # {"k":"ééééééé"}: 15 characters, 22 bytes
    assert row(session).data == {}


def test_score_song_and_chart_data_are_bounded_too(api, game_server, host, session):
    song = SongFactory()
    chart = ChartFactory(song=song)
    big = data_of_size(16 * 1024 + 1)

    responses = [
        api.as_(game_server).patch(f"/api/v1/songs/{song.pk}", {"data": big}, format="json"),
        api.post("/api/v1/charts", {"song": song.pk, "difficulty": "X", "data": big}, format="json"),
        api.as_(host).post(
            f"/api/v1/sessions/{session.uid}/scores", {"chart": chart.pk, "value": 1, "data": big}, format="json"
        ),
    ]

    for response in responses:
        assert assert_problem(response, 400, "data_too_large")["errors"][0]["field"] == "data"
    assert Song.objects.get().data == {}
    assert Chart.objects.count() == 1
    assert Score.objects.count() == 0


def test_imported_score_data_is_bounded_too(api, host):
    chart = ChartFactory()
    item = {"clientId": "a", "chart": chart.pk, "value": 1, "timeAchieved": "2026-01-01T00:00:00Z"}
    big = item | {"data": data_of_size(16 * 1024 + 1)}

    body = assert_problem(api.as_(host).post("/api/v1/scores/import", {"scores": [big]}, format="json"), 400)

    assert [(e["field"], e["code"]) for e in body["errors"]] == [("scores[0].data", "data_too_large")]
    assert Score.objects.count() == 0


def test_the_schema_documents_413_for_every_route_with_a_body():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [op for item in schema["paths"].values() for op in item.values() if isinstance(op, dict)]
    with_body = [op for op in operations if "requestBody" in op]

    assert len(with_body) > 10
    assert [op["operationId"] for op in with_body if "413" not in op["responses"]] == []
    assert [op["operationId"] for op in operations if "400" not in op["responses"]] == []
