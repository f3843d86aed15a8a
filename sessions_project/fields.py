"""Input fields that take JSON as it is typed, for every input serializer of the API.

DRF's fields coerce: BooleanField takes "yes", 1, "on" and "0", CharField turns 12345 into
"12345", UUIDField takes an integer. The API's contract (and its schema) says booleans are JSON
booleans and strings JSON strings, so these fields refuse anything else with a field error.
`JSONObjectField` bounds the `data` objects the database stores (depth and size).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_M = TypeVar("_M", bound=models.Model)


class StrictCharField(serializers.CharField):
    """A JSON string only."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """`true` or `false` only."""

    def to_internal_value(self, data: Any) -> bool:
        if data is not True and data is not False:
            self.fail("invalid", input=data)
        return data


class StrictUUIDField(serializers.UUIDField):
    """A UUID as a JSON string only (DRF's takes an integer as a UUID's value)."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a JSON string (DRF's compares str(value), so 1 would match "1")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer[_M]):
    """A ModelSerializer whose generated fields are the strict ones above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
        models.UUIDField: StrictUUIDField,
    }
    serializer_choice_field = StrictChoiceField


DATA_MESSAGES = {
    "not_object": "A JSON object is required.",
    "too_deep": "data may nest at most {max_depth} levels (the object itself is level 1).",
    "data_too_large": "data may be at most {max_bytes} bytes as compact JSON.",
}


def data_problem(value: dict[str, Any]) -> str | None:
    """The code of what is wrong with a `data` object, or None: `too_deep` past DATA_MAX_DEPTH
    levels (checked without recursion first, so a deep object never reaches json.dumps),
    `data_too_large` past DATA_MAX_BYTES of compact UTF-8 JSON."""
    max_depth = settings.DATA_MAX_DEPTH
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > max_depth:
            return "too_deep"
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return "data_too_large" if size > settings.DATA_MAX_BYTES else None


def data_message(code: str) -> str:
    return DATA_MESSAGES[code].format(max_depth=settings.DATA_MAX_DEPTH, max_bytes=settings.DATA_MAX_BYTES)


# Declared as an object: `null` or a list is refused, and the schema must say so.
@extend_schema_field({"type": "object", "additionalProperties": {}})
class JSONObjectField(serializers.JSONField):
    """A `data` object: a JSON object within DATA_MAX_DEPTH levels and DATA_MAX_BYTES."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(data_message("not_object"), code="not_object")
        try:
            code = data_problem(data)
        except (TypeError, ValueError):
            self.fail("invalid")
        if code is not None:
            raise serializers.ValidationError(data_message(code), code=code)
        return data
