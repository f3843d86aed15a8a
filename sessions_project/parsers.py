"""The API's JSON parser: DRF's, made safe for hostile bodies.

DRF's JSONParser answers 500 for a body nested about 1,000 deep (a RecursionError) and lets
NUL and lone surrogates through to the database. Here every body is decoded strictly, parsed,
then walked once without recursion: nesting is bounded and every key and string is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from sessions_project.errors import InvalidInput, field_error
from sessions_project.text import BAD_TEXT, invalid_text, printable

# A NUL or a surrogate can only enter a JSON text as a \u escape (strict UTF-8 has neither, and
# raw control characters are invalid in JSON strings): without one, strings need no check.
SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# A body may nest this much deeper than `data` itself may (an import item's data is 3 down).
BODY_DEPTH_MARGIN = 8


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(field: str, limit: int) -> InvalidInput:
    message = f"Nested deeper than {limit} levels."
    errors = [field_error(printable(field), message, "too_deep")] if field else None
    return InvalidInput(f"{field}: {message}" if field else message, code="too_deep", errors=errors)


def check_document(document: Any, *, max_depth: int, check_text: bool) -> None:
    """400 too_deep past `max_depth` levels (the top level is 1); 400 invalid_text for a key
    or string holding a NUL or a lone surrogate (when `check_text`). Iterative: no recursion."""
    if check_text and isinstance(document, str) and BAD_TEXT.search(document):
        raise invalid_text("")
    stack: list[tuple[Any, int, str]] = [(document, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        items: Iterable[tuple[str | int, Any]]
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        if depth > max_depth:
            raise _too_deep(path.split(".", 1)[0].split("[", 1)[0], max_depth)
        for key, item in items:
            if isinstance(key, str):
                member = f"{path}.{key}" if path else key
                if check_text and BAD_TEXT.search(key):
                    raise invalid_text(member)
            else:
                member = f"{path}[{key}]"
            if isinstance(item, str):
                if check_text and BAD_TEXT.search(item):
                    raise invalid_text(member)
            elif isinstance(item, (dict, list)):
                stack.append((item, depth + 1, member))


class StrictJSONParser(JSONParser):
    """JSON bodies: invalid UTF-8 or JSON is a 400 parse_error, too deep a 400 too_deep, a NUL
    or lone surrogate anywhere a 400 invalid_text; never a 500."""

    # Any JSON value, not only the object the stubs name: a body may be an array (score import).
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        # The body was bounded by RequestBodyLimitMiddleware before anything read it.
        raw = stream.read()
        try:
            text = raw.decode(encoding) if isinstance(raw, bytes) else raw
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}") from None
        limit = settings.DATA_MAX_DEPTH + BODY_DEPTH_MARGIN
        try:
            document = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise _too_deep("", limit) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        check_document(document, max_depth=limit, check_text=SUSPECT_ESCAPE.search(text) is not None)
        return document
