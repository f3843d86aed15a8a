"""Publishing written events to live listeners, after their transaction commits.

`events.record` hands every batch it writes to `publish_on_commit`. Once the transaction has
committed, one wake-up ({"type": "live.wake", "id": <highest id>}) goes to the group of each
session the batch touches and of each player it names (the player concerned, the actor, a new
and a previous host): the groups of the listeners whose feed may have grown.

Sending never blocks or fails the request: the wake-ups are handed to an event loop (the ASGI
server's own when this process serves live routes, so the in-memory layer reaches them; else
a daemon thread's, kept for the process so the Redis layer keeps its connections) and sent
there. If the layer is unreachable they are dropped with a warning: the listeners read the log
on their keep-alive tick anyway, so an event is late, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from .groups import WAKE, player_group, session_group

if TYPE_CHECKING:
    from ..event_models import SessionEvent

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_serving_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None


def attach_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The ASGI server's loop, where this process's listeners wait (sessions_project.asgi)."""
    global _serving_loop
    _serving_loop = loop


def _loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    serving = _serving_loop
    if serving is not None and serving.is_running():
        return serving
    with _lock:
        if _own_loop is None or _own_loop.is_closed():
            _own_loop = asyncio.new_event_loop()
            threading.Thread(target=_own_loop.run_forever, name="live-publisher", daemon=True).start()
        return _own_loop


def groups_of(batch: Iterable[SessionEvent]) -> set[str]:
    """The groups whose listeners may see one of these events."""
    groups: set[str] = set()
    for event in batch:
        groups.add(session_group(event.session_uid))
        data = event.data if isinstance(event.data, dict) else {}
        for uid in (event.player_uid, event.actor_uid, data.get("hostUid"), data.get("previousHostUid")):
            if uid:
                groups.add(player_group(uid))
    return groups


async def _send(groups: set[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in sorted(groups):
            await layer.group_send(group, message)
    except Exception:  # the layer is down: listeners catch up on their tick
        logger.warning("live: could not publish event %s to the channel layer", message["id"], exc_info=True)


def _nobody_listens_here() -> bool:
    """An in-process layer reaches only this process's listeners, and a listener attaches the
    serving loop when it connects: with none ever attached (a WSGI worker), nobody can be
    woken, and handing the wake-ups to a thread would only cost the request."""
    return _serving_loop is None and isinstance(get_channel_layer(), InMemoryChannelLayer)


def publish(batch: list[SessionEvent]) -> None:
    """Wake the listeners of these (committed) events up, without waiting for the layer."""
    if not batch or _nobody_listens_here():
        return
    message = {"type": WAKE, "id": max(event.id or 0 for event in batch)}
    asyncio.run_coroutine_threadsafe(_send(groups_of(batch), message), _loop())


def publish_on_commit(batch: list[SessionEvent]) -> None:
    """`publish` once the current transaction commits (at once outside one); never if it
    rolls back."""
    transaction.on_commit(lambda: publish(batch))
