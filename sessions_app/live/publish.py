"""Publishing written events to live listeners, after their transaction commits.

`events.record` hands every batch it writes to `publish_on_commit`. Once the transaction has
committed, one wake-up ({"type": "live.wake", "id": <highest id>}) goes to the group of each
session the batch touches and of each player it names (the player concerned, the actor, a new
and a previous host): the groups of the listeners whose feed may have grown.

Sending never fails the request. With the Redis pub/sub layer (one host) the request's own
thread publishes, in one pipelined round trip of at most LIVE_PUBLISH_TIMEOUT_MS, the bytes the
layer's group_send would (`_RedisPublisher`). Otherwise the wake-ups are handed to an event
loop: the ASGI server's own when this process serves live routes, so the in-memory layer
reaches them; else a daemon thread's (another layer). A process whose in-memory layer no
listener ever attached to publishes nothing. If the layer is unreachable the wake-ups are
dropped with a warning: the listeners read the log on their keep-alive tick anyway, so an
event is late, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
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


class _RedisPublisher:
    """Publishes wake-ups to the Redis pub/sub layer from the request's own thread: the
    group channels and message bytes the layer itself uses for `group_send` (its prefix, its
    serializer), all of a batch's groups in one pipelined round trip. Handing them to the
    publisher thread instead cost a write a fifth of its throughput (that thread's event loop
    and Redis client took the interpreter's lock from the requests). A call waits at most
    LIVE_PUBLISH_TIMEOUT_MS; after a failure the process leaves Redis alone for
    LIVE_PUBLISH_BACKOFF_SECONDS (listeners catch up on their tick meanwhile)."""

    def __init__(self, layer: Any, config: dict[str, Any]) -> None:
        import redis

        (host,) = config["hosts"]
        timeout = settings.LIVE_PUBLISH_TIMEOUT_MS / 1000
        self.client = redis.Redis.from_url(host, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.prefix = config.get("prefix", "asgi")
        self.layer = layer
        self.resting_until = 0.0

    def send(self, groups: set[str], message: dict[str, Any]) -> None:
        if time.monotonic() < self.resting_until:
            return
        payload = self.layer.serialize(message)
        try:
            pipeline = self.client.pipeline(transaction=False)
            for group in sorted(groups):
                pipeline.publish(f"{self.prefix}__group__{group}", payload)
            pipeline.execute()
        except Exception:  # Redis is down or slow: listeners catch up on their tick
            self.resting_until = time.monotonic() + settings.LIVE_PUBLISH_BACKOFF_SECONDS
            logger.warning("live: could not publish event %s to Redis", message["id"], exc_info=True)


_publisher_of: tuple[Any, _RedisPublisher | None] | None = None  # (the layer, its publisher)


def _redis_publisher() -> _RedisPublisher | None:
    """The synchronous publisher of the configured layer, if it is the Redis pub/sub layer on
    one host (else None: the layer's own group_send, on an event loop)."""
    global _publisher_of
    layer = get_channel_layer()
    if _publisher_of is None or _publisher_of[0] is not layer:
        config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
        usable = isinstance(layer, RedisPubSubChannelLayer) and len(config.get("hosts", ())) == 1
        _publisher_of = (layer, _RedisPublisher(layer, config) if usable else None)
    return _publisher_of[1]


def publish(batch: list[SessionEvent]) -> None:
    """Wake the listeners of these (committed) events up. Never fails the request; with Redis,
    waits for one round trip at most LIVE_PUBLISH_TIMEOUT_MS long."""
    if not batch or _nobody_listens_here():
        return
    message = {"type": WAKE, "id": max(event.id or 0 for event in batch)}
    publisher = _redis_publisher()
    if publisher is not None:
        publisher.send(groups_of(batch), message)
        return
    asyncio.run_coroutine_threadsafe(_send(groups_of(batch), message), _loop())


def publish_on_commit(batch: list[SessionEvent]) -> None:
    """`publish` once the current transaction commits (at once outside one); never if it
    rolls back."""
    transaction.on_commit(lambda: publish(batch))
