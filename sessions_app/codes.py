"""Join codes: six characters a player can read out and type, from an alphabet without
look-alikes (no 0/O, no 1/I/L). Uppercase is what is stored; what a player types is matched
case-insensitively (`normalise_join_code`). 31 characters, six places: 887,503,681 codes, so a
random one collides with a live session's about once in 887 creations at a million live
sessions; the partial unique constraint catches that and the services draw again."""

from __future__ import annotations

import secrets

JOIN_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
JOIN_CODE_LENGTH = 6
# Draws before a create or rotation gives up on a colliding code (each collides with
# probability live sessions / 887 million).
JOIN_CODE_ATTEMPTS = 5


def new_join_code() -> str:
    """A fresh random code (the field's default: every new session gets one)."""
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalise_join_code(text: str) -> str | None:
    """The stored form of what a player typed (uppercase, surrounding spaces dropped), or None
    when it cannot be any code (wrong length or a character outside the alphabet)."""
    code = text.strip().upper()
    if len(code) != JOIN_CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in code):
        return None
    return code


def is_join_code_collision(error: Exception) -> bool:
    """Whether an IntegrityError is the live-code constraint refusing a drawn code (its name
    on PostgreSQL, the column on SQLite)."""
    text = str(error)
    return "session_join_code_live" in text or "join_code" in text
