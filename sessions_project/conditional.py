"""Conditional requests (RFC 9110 section 13): If-Match and If-None-Match against one ETag.

Both headers may hold `*` or a comma-separated list of entity tags. If-Match compares
strongly (a weak tag never matches), If-None-Match weakly (the W/ prefix is ignored)."""

from __future__ import annotations

import re

# An entity tag: optional W/, then a quoted string without quotes inside.
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """[(weak, '"opaque"'), ...], or None when the header is not a valid list of tags."""
    tags: list[tuple[bool, str]] = []
    position = 0
    header = header.strip()
    while position < len(header):
        match = _ETAG.match(header, position)
        if match is None:
            return None
        tags.append((bool(match.group(1)), match.group(2)))
        position = match.end()
    return tags


def if_match_passes(header: str | None, etag: str) -> bool:
    """True when there is no If-Match, it is `*`, or it names `etag` as a strong tag."""
    if header is None:
        return True
    if header.strip() == "*":
        return True
    tags = _tags(header) or []
    return any(not weak and tag == etag for weak, tag in tags)


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """True when If-None-Match is `*` or names `etag` (weakly): answer 304."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    tags = _tags(header) or []
    bare = etag[2:] if etag.startswith("W/") else etag
    return any(tag == bare for _, tag in tags)
