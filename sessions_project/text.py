"""Text the database can store: no NUL and no lone UTF-16 surrogate.

PostgreSQL refuses both (a DataError, i.e. a 500), and SQLite stores a lone surrogate that
then breaks every response that includes it. Every string of a request is checked here once
(the JSON parser, the query string and the join-password header) so nothing below sees one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from sessions_project.errors import InvalidInput, field_error

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def is_bad_text(value: str) -> bool:
    return BAD_TEXT.search(value) is not None


def printable(value: str) -> str:
    """`value` safe to echo in a response: bad characters as \\uXXXX escapes."""
    return BAD_TEXT.sub(lambda match: f"\\u{ord(match.group()):04x}", value)


def invalid_text(field: str) -> InvalidInput:
    shown = printable(field)
    message = "Text may not hold a NUL character or a lone UTF-16 surrogate."
    return InvalidInput(
        f"{shown}: {message}" if shown else message,
        code="invalid_text",
        errors=[field_error(shown, message, "invalid_text")],
    )


def _raw_bytes(query_string: str) -> bytes:
    # PEP 3333: the WSGI query string is bytes decoded as latin-1; a test client may pass more.
    try:
        return query_string.encode("latin-1")
    except UnicodeEncodeError:
        return query_string.encode("utf-8", "surrogatepass")


def _is_text(raw: bytes) -> bool:
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:  # also any UTF-8 encoded surrogate
        return False
    return "\x00" not in text


def check_query_string(query_string: str) -> None:
    """400 invalid_text when a name or value of the raw query string is not valid UTF-8 or
    holds a NUL. Django would silently turn bad bytes into U+FFFD, so the raw string is read."""
    if not query_string:
        return
    raw = _raw_bytes(query_string)
    if b"%" not in raw and b"\x00" not in raw and raw.isascii():
        return  # nothing encoded, nothing to decode
    if _is_text(raw):
        return
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        name = name.replace(b"+", b" ")
        shown = unquote_to_bytes(name).decode("utf-8", "replace")
        if not _is_text(name) or not _is_text(value):
            raise invalid_text(shown)
    raise invalid_text("")
