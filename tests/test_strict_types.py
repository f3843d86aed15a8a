"""Booleans are JSON booleans and strings JSON strings on every input of the API, as the schema
says: DRF's fields would take "yes", 1, "on" and "0" as booleans and 12345 as "12345"."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

from sessions_app.models import Chart, Song
from sessions_project.fields import (
    JSONObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictUUIDField,
)

from .conftest import row
from .factories import ChartFactory, SongFactory
from .test_errors import assert_problem

pytestmark = pytest.mark.django_db

# A DRF field class, and the strict class every input field of that kind must be.
STRICT = [
    (serializers.CharField, StrictCharField),
    (serializers.BooleanField, StrictBooleanField),
    (serializers.UUIDField, StrictUUIDField),
    (serializers.ChoiceField, StrictChoiceField),
    (serializers.JSONField, JSONObjectField),
    (serializers.DictField, JSONObjectField),
]


def request_serializers():
    """(operation, serializer instance) for every request body the API documents."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    for path, _, method, callback in generator.endpoints:
        if method not in ("POST", "PUT", "PATCH"):
            continue  # no body: drf-spectacular would answer with the response serializer
        view = generator.create_view(callback, method)
        view.schema.path, view.schema.method = path, method.upper()  # as get_operation() sets them
        serializer = view.schema.get_request_serializer()
        if isinstance(serializer, type):
            serializer = serializer()
        if isinstance(serializer, serializers.BaseSerializer):
            yield f"{method} {path}", serializer


def lax_fields(field, path: str):
    """Paths of writable fields (nested ones included) that are not the strict kind."""
    if getattr(field, "read_only", False):
        return
    if isinstance(field, serializers.ListSerializer):
        yield from lax_fields(field.child, f"{path}[]")
        return
    if isinstance(field, serializers.Serializer):
        for name, child in field.fields.items():
            yield from lax_fields(child, f"{path}.{name}" if path else name)
        return
    if isinstance(field, (serializers.ListField, serializers.DictField)) and not isinstance(field, JSONObjectField):
        child = field.child
        if not isinstance(field, serializers.DictField) or isinstance(child, serializers.Field):
            yield from lax_fields(child, f"{path}[]")
    for lax, strict in STRICT:
        if isinstance(field, lax) and not isinstance(field, strict):
            yield f"{path}: {type(field).__name__}"


def test_no_input_serializer_of_the_api_uses_a_coercing_field():
    found = list(request_serializers())
    assert len(found) > 15
    lax = [f"{operation} {problem}" for operation, serializer in found for problem in lax_fields(serializer, "")]

    assert lax == []


@pytest.mark.parametrize("value", ["yes", 1, "on", "0", "true", None, 0])
def test_highlight_must_be_a_json_boolean(api, session, host, value):
    response = api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {"highlight": value}, format="json")

    body = assert_problem(response, 400)
    assert body["errors"][0]["field"] == "highlight"
    assert row(session).highlight is False


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", 12345), ("desc", True), ("type", 1.5), ("workspaceId", 0), ("password", 1234), ("name", ["abc"])],
)
def test_string_members_of_a_session_must_be_json_strings(api, session, host, field, value):
    before = row(session)

    body = assert_problem(
        api.as_(host).patch(f"/api/v1/sessions/{session.uid}", {field: value}, format="json"), 400, "invalid"
    )

    assert body["errors"][0]["field"] == field
    assert row(session).version == before.version


@pytest.mark.parametrize("value", [5, 12345678901234567890])
def test_a_uuid_must_be_a_json_string(api, session, host, value):
    response = api.as_(host).post(f"/api/v1/sessions/{session.uid}/kick", {"player": value}, format="json")

    assert assert_problem(response, 400)["errors"][0]["field"] == "player"


def test_an_enum_must_be_a_json_string(api, host):
    response = api.as_(host).post("/api/v1/sessions", {"visibility": ["public"]}, format="json")

    assert assert_problem(response, 400)["errors"][0]["field"] == "visibility"


def test_a_true_boolean_is_still_taken(api, session, host):
    response = api.as_(host).patch(
        f"/api/v1/sessions/{session.uid}", {"highlight": True, "name": "Big game"}, format="json"
    )

    assert response.status_code == 200
    assert (row(session).highlight, row(session).name) == (True, "Big game")


def test_song_and_chart_strings_must_be_json_strings(api, game_server):
    song = SongFactory(title="Title")
    chart = ChartFactory(song=song, difficulty="HARD")
    api.as_(game_server)

    created = api.post("/api/v1/songs", {"title": 12345, "artist": "x"}, format="json")
    patched = api.patch(f"/api/v1/songs/{song.pk}", {"genre": True}, format="json")
    chart_patched = api.patch(f"/api/v1/charts/{chart.pk}", {"difficulty": 5}, format="json")

    assert assert_problem(created, 400)["errors"][0]["field"] == "title"
    assert assert_problem(patched, 400)["errors"][0]["field"] == "genre"
    assert assert_problem(chart_patched, 400)["errors"][0]["field"] == "difficulty"
    assert Song.objects.get().genre == song.genre
    assert Chart.objects.get().difficulty == "HARD"


def test_score_marks_must_be_json_strings(api, host, session):
    chart = ChartFactory()

    response = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/scores", {"chart": chart.pk, "value": 1, "grade": 7}, format="json"
    )

    assert assert_problem(response, 400)["errors"][0]["field"] == "grade"


def test_registration_and_token_strings_must_be_json_strings(api, host):
    registered = api.post("/api/v1/players", {"username": 12345, "password": "a long passphrase 1"}, format="json")
    token = api.post("/api/v1/auth/token", {"username": "host", "password": 12345}, format="json")
    refresh = api.post("/api/v1/auth/token/refresh", {"refresh": 1}, format="json")

    assert assert_problem(registered, 400)["errors"][0]["field"] == "username"
    assert assert_problem(token, 400)["errors"][0]["field"] == "password"
    assert assert_problem(refresh, 400)["errors"][0]["field"] == "refresh"


def test_a_time_must_be_a_json_string(api, host, session, outsider):
    response = api.as_(host).post(
        f"/api/v1/sessions/{session.uid}/invites", {"player": str(outsider.uid), "expiresAt": 4102444800}, format="json"
    )

    assert assert_problem(response, 400)["errors"][0]["field"] == "expiresAt"
