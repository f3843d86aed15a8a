"""Shapes of the catalog (songs, charts) and of scores.

Input is validated by explicit DRF serializers (a score import's items by the service, which
lists every problem of a batch at once). Output is built by the `*_document` functions from
`.values()` rows, as for sessions: a session's scores can be 10,000 rows and skip DRF's
per-field machinery; the output serializers declare the same shapes for the OpenAPI schema.
Songs, charts and scores are identified by `id` (sessions and players by `uid`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, extend_schema_field
from rest_framework import serializers

from sessions_app.models import Chart, Song
from sessions_app.services.scores import (
    CLIENT_ID_MAX_LENGTH,
    EARLIEST_TIME,
    FUTURE_SLACK,
    IMPORT_MAX_SCORES,
    MARK_MAX_LENGTH,
    MAX_ID,
    SCORE_VALUE_DIGITS,
    SCORE_VALUE_PLACES,
    ImportResult,
    json_number,
    parse_number,
)
from sessions_project.fields import JSONObjectField, StrictCharField, StrictModelSerializer, StrictUUIDField
from sessions_project.times import iso

from .serializers import SessionSerializer, WholeNumberField


class JSONNumberField(serializers.Field[Decimal, Any, int | float | None, Any]):
    """A decimal column as a JSON number both ways: a number in (not a string, not a boolean),
    a number out (an int when integral)."""

    def __init__(
        self, *, max_digits: int, decimal_places: int, min_value: Decimal | int | None = None, **kwargs: Any
    ) -> None:
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.min_value = min_value
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            value = parse_number(data, max_digits=self.max_digits, decimal_places=self.decimal_places)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None
        if self.min_value is not None and value < self.min_value:
            raise serializers.ValidationError(f"Must be at least {self.min_value}.", code="min_value")
        return value

    def to_representation(self, value: Decimal | None) -> int | float | None:
        return json_number(value)


class JSONNumberFieldExtension(OpenApiSerializerFieldExtension):
    """The bounds of each JSONNumberField in the schema: below 10^(digits - places) in
    magnitude, and at least min_value when set."""

    target_class = JSONNumberField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = {
            "type": "number",
            "maximum": 10 ** (field.max_digits - field.decimal_places),
            "exclusiveMaximum": True,
        }
        if field.min_value is not None:
            schema["minimum"] = field.min_value
        else:
            schema["minimum"] = -schema["maximum"]
            schema["exclusiveMinimum"] = True
        return schema


class SongIdField(serializers.PrimaryKeyRelatedField[Song]):
    """A song's id: a whole JSON number (not `true`, not "5") of an existing song."""

    def to_internal_value(self, data: Any) -> Song:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        # The stubs type this field's input as the model itself; it is the key.
        return super().to_internal_value(data)  # type: ignore[arg-type]


# --- catalog --------------------------------------------------------------------------------


class SongSerializer(StrictModelSerializer[Song]):
    """A song: POST needs title and artist; PUT validates the whole song, PATCH what it names."""

    lengthSeconds = WholeNumberField(
        source="length_seconds", required=False, allow_null=True, min_value=0, max_value=2**31 - 1
    )
    bpm = JSONNumberField(max_digits=7, decimal_places=2, min_value=0, required=False, allow_null=True)
    data = JSONObjectField(required=False)  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    dateCreated = serializers.DateTimeField(source="date_created", read_only=True)

    class Meta:
        model = Song
        fields = ["id", "title", "artist", "subtitle", "genre", "bpm", "lengthSeconds", "data", "dateCreated"]
        read_only_fields = ["id"]


class ChartSerializer(StrictModelSerializer[Chart]):
    """A playable chart of a song: POST needs song (its id) and difficulty."""

    song = SongIdField(queryset=Song.objects.all(), help_text="The song's id.")
    level = JSONNumberField(max_digits=6, decimal_places=2, required=False, allow_null=True)
    data = JSONObjectField(required=False)  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    dateCreated = serializers.DateTimeField(source="date_created", read_only=True)

    class Meta:
        model = Chart
        fields = ["id", "song", "difficulty", "level", "data", "dateCreated"]
        read_only_fields = ["id"]


SONG_COLUMNS = ("id", "title", "artist", "subtitle", "genre", "bpm", "length_seconds", "data", "date_created")
CHART_COLUMNS = ("id", "song_id", "difficulty", "level", "data", "date_created")


def song_document(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "artist": row["artist"],
        "subtitle": row["subtitle"],
        "genre": row["genre"],
        "bpm": json_number(row["bpm"]),
        "lengthSeconds": row["length_seconds"],
        "data": row["data"],
        "dateCreated": iso(row["date_created"]),
    }


def chart_document(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "song": row["song_id"],
        "difficulty": row["difficulty"],
        "level": json_number(row["level"]),
        "data": row["data"],
        "dateCreated": iso(row["date_created"]),
    }


# --- scores ---------------------------------------------------------------------------------


def score_value_field(**kwargs: Any) -> JSONNumberField:
    return JSONNumberField(max_digits=SCORE_VALUE_DIGITS, decimal_places=SCORE_VALUE_PLACES, **kwargs)


class ScoreSerializer(serializers.Serializer[Any]):
    """A score (output shape, for the schema; `score_document` builds it)."""

    id = serializers.IntegerField()
    session = serializers.UUIDField(help_text="The session's uid.")
    player = serializers.UUIDField(help_text="The player's uid.")
    chart = serializers.IntegerField(help_text="The chart's id.")
    song = serializers.IntegerField(help_text="The chart's song's id.")
    value = score_value_field()
    grade = serializers.CharField(allow_null=True)
    lamp = serializers.CharField(allow_null=True)
    data = serializers.DictField()  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    timeAchieved = serializers.DateTimeField()


class ScoreSubmitSerializer(serializers.Serializer[Any]):
    """POST /sessions/{uid}/scores."""

    chart = WholeNumberField(min_value=1, max_value=MAX_ID, help_text="The chart's id.")
    value = score_value_field(help_text="An integer or a decimal (up to 6 places).")
    player = StrictUUIDField(
        required=False, allow_null=True, help_text="session:* accounts only: the member whose score this is."
    )
    grade = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=MARK_MAX_LENGTH)
    lamp = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=MARK_MAX_LENGTH)
    data = JSONObjectField(required=False)  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    timeAchieved = serializers.DateTimeField(
        source="time_achieved", required=False, help_text="When the score was achieved; default now."
    )

    def validate_timeAchieved(self, value: datetime) -> datetime:
        if not EARLIEST_TIME <= value <= timezone.now() + FUTURE_SLACK:
            raise serializers.ValidationError("timeAchieved must be a past time, from 1970 on.", code="out_of_range")
        return value


SCORE_COLUMNS = ("id", "player__uid", "chart_id", "chart__song_id", "value", "grade", "lamp", "data", "time_achieved")


def score_document(row: dict[str, Any], session_uid: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "session": session_uid,
        "player": str(row["player__uid"]),
        "chart": row["chart_id"],
        "song": row["chart__song_id"],
        "value": json_number(row["value"]),
        "grade": row["grade"] or None,
        "lamp": row["lamp"] or None,
        "data": row["data"],
        "timeAchieved": iso(row["time_achieved"]),
    }


class PlayerPublicSerializer(serializers.Serializer[Any]):
    """A player as anyone may see it."""

    uid = serializers.UUIDField()
    username = serializers.CharField()


class SessionScoresSerializer(serializers.Serializer[Any]):
    """GET /sessions/{uid}/scores (seed 002): the session, its scores and what they were played on."""

    session = SessionSerializer()
    scores = ScoreSerializer(many=True, help_text="In the order they were achieved.")
    songs = SongSerializer(many=True, help_text="Only the songs of these scores' charts.")
    charts = ChartSerializer(many=True, help_text="Only the charts of these scores.")
    user = PlayerPublicSerializer(
        allow_null=True, help_text="The session's host, or its creator for a session without a host."
    )


# --- import ---------------------------------------------------------------------------------


class ScoreImportItemSerializer(serializers.Serializer[Any]):
    """One score of an import (the schema's shape; the service checks every item)."""

    clientId = StrictCharField(
        max_length=CLIENT_ID_MAX_LENGTH, help_text="Your own id for this score: a re-sent import skips it."
    )
    chart = serializers.IntegerField(help_text="The chart's id.")
    value = score_value_field()
    timeAchieved = serializers.DateTimeField(help_text="Required: it decides which session the score goes to.")
    grade = StrictCharField(required=False, allow_null=True, max_length=MARK_MAX_LENGTH)
    lamp = StrictCharField(required=False, allow_null=True, max_length=MARK_MAX_LENGTH)
    data = JSONObjectField(required=False)  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors


@extend_schema_field(ScoreImportItemSerializer(many=True))
class ScoreItemsField(serializers.ListField):
    """The batch as sent: each item is checked by the service, which reports all problems."""


class ScoreImportSerializer(serializers.Serializer[Any]):
    scores = ScoreItemsField(max_length=IMPORT_MAX_SCORES, help_text=f"At most {IMPORT_MAX_SCORES} scores.")


class ImportedSessionSerializer(serializers.Serializer[Any]):
    session = serializers.UUIDField(help_text="The session the group's scores went to.")
    type = serializers.ChoiceField(choices=["created", "appended"])
    merged = serializers.ListField(
        child=serializers.UUIDField(), help_text="Sessions this group bridged: absorbed into `session` and deleted."
    )


class ScoreImportResultSerializer(serializers.Serializer[Any]):
    sessions = ImportedSessionSerializer(many=True, help_text="One entry per group of the batch, in time order.")
    skipped = serializers.IntegerField(help_text="Scores already imported (same clientId), not imported again.")


def import_result_document(result: ImportResult) -> dict[str, Any]:
    return {
        "sessions": [{"session": g.session_uid, "type": g.type, "merged": g.merged} for g in result.groups],
        "skipped": result.skipped,
    }
