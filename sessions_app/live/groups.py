"""Channel-layer group names: one per session and one per player."""

from __future__ import annotations

import uuid
from typing import Any


def session_group(session_uid: Any) -> str:
    return f"live.session.{uuid.UUID(str(session_uid)).hex}"


def player_group(player_uid: Any) -> str:
    return f"live.player.{uuid.UUID(str(player_uid)).hex}"


# The one message type sent to the groups; consumers handle it as `live_wake`.
WAKE = "live.wake"
