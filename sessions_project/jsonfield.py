"""A JSONField that reads its column with orjson.

Decoding the session's JSON columns (`data` and the rendered `users`, `teams`, `invited`)
with the standard library took a fifth of the time of a session list. Values orjson does
not read exactly as the standard library does (integers beyond 64 bits, NaN and Infinity,
which the API never stores but a row written by hand may hold) fall back to Django's own
decoding, so what a column reads as is unchanged. orjson reads an integer beyond 64 bits as
a float instead of refusing it, so text with 20 digits in a row goes to Django directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import models

# 20 digits: every integer orjson keeps exact has at most 19 (unsigned 64 bits: 20, but the
# check is only there to send rare values to the exact decoder, so it errs on that side).
_LONG_DIGIT_RUN = re.compile(r"\d{20}")


class JSONField(models.JSONField):
    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if self.decoder is None and isinstance(value, str) and not _LONG_DIGIT_RUN.search(value):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return super().from_db_value(value, expression, connection)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        # The column is Django's JSONField in every way the database sees: migrations record
        # it as one, so switching the decoder needs no migration.
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
