"""Live connections per player (LIVE_MAX_CONNECTIONS_PER_PLAYER), across every live process.

Each open stream holds a place under its player, refreshed on its keep-alive tick and given
back when it ends; a place not refreshed for LEASE seconds (a process that died) lapses. With
REDIS_URL the places are a sorted set per player in Redis (member: the connection, score: when
its lease ends), so every live process counts the same places; without it, one process serves
every live route (`make run`), and a dictionary in memory is that count.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any

from django.conf import settings

# Seconds a place lasts without a refresh (several keep-alive ticks).
LEASE_TICKS = 4
# Redis connections of one live process's event loop for the count, and how long a call waits
# for one of them when all are busy.
REDIS_POOL_CONNECTIONS = 50
REDIS_POOL_WAIT_SECONDS = 10


def _lease() -> float:
    return float(settings.LIVE_KEEPALIVE_SECONDS * LEASE_TICKS)


class MemoryConnections:
    """Places in this process's memory."""

    def __init__(self) -> None:
        self._places: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    async def acquire(self, player_uid: Any, connection_id: str) -> bool:
        now = time.time()
        with self._lock:
            places = self._places.setdefault(str(player_uid), {})
            for key in [key for key, until in places.items() if until <= now]:
                del places[key]
            if len(places) >= settings.LIVE_MAX_CONNECTIONS_PER_PLAYER:
                return False
            places[connection_id] = now + _lease()
            return True

    async def refresh(self, player_uid: Any, connection_id: str) -> None:
        with self._lock:
            places = self._places.get(str(player_uid))
            if places is not None and connection_id in places:
                places[connection_id] = time.time() + _lease()

    async def release(self, player_uid: Any, connection_id: str) -> None:
        with self._lock:
            places = self._places.get(str(player_uid), {})
            places.pop(connection_id, None)
            if not places:
                self._places.pop(str(player_uid), None)

    def reset(self) -> None:
        with self._lock:
            self._places.clear()


class RedisConnections:
    """Places in Redis, shared by every live process (a client per event loop: redis-py's
    asyncio connections belong to the loop that made them)."""

    def __init__(self, url: str, prefix: str):
        self.url = url
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # A blocking pool: past its connections, a call waits for one to come free (a
            # burst of clients connecting or dropping at once) instead of raising
            # MaxConnectionsError, which would leave a place held until its lease lapses.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_POOL_CONNECTIONS, timeout=REDIS_POOL_WAIT_SECONDS
            )
            client = self._clients[loop] = redis.asyncio.Redis(connection_pool=pool)
        return client

    def _key(self, player_uid: Any) -> str:
        return f"{self.prefix}:connections:{player_uid}"

    async def acquire(self, player_uid: Any, connection_id: str) -> bool:
        key, now = self._key(player_uid), time.time()
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {connection_id: now + _lease()})
            pipe.zcard(key)
            pipe.expire(key, int(_lease()) + 1)
            _, _, count, _ = await pipe.execute()
        if count > settings.LIVE_MAX_CONNECTIONS_PER_PLAYER:
            await self.release(player_uid, connection_id)
            return False
        return True

    async def refresh(self, player_uid: Any, connection_id: str) -> None:
        key = self._key(player_uid)
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.zadd(key, {connection_id: time.time() + _lease()}, xx=True)
            pipe.expire(key, int(_lease()) + 1)
            await pipe.execute()

    async def release(self, player_uid: Any, connection_id: str) -> None:
        await self._client().zrem(self._key(player_uid), connection_id)

    def reset(self) -> None:
        self._clients = weakref.WeakKeyDictionary()


class LiveConnections:
    """The backend the settings choose, chosen when first used (tests change the settings)."""

    def _backend(self) -> MemoryConnections | RedisConnections:
        url = settings.REDIS_URL
        backend = getattr(self, "_chosen", None)
        if backend is None or getattr(backend, "url", "") != url:
            prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "sessions-live")
            backend = RedisConnections(url, prefix) if url else MemoryConnections()
            self._chosen = backend
        return backend

    async def acquire(self, player_uid: Any, connection_id: str) -> bool:
        return await self._backend().acquire(player_uid, connection_id)

    async def refresh(self, player_uid: Any, connection_id: str) -> None:
        await self._backend().refresh(player_uid, connection_id)

    async def release(self, player_uid: Any, connection_id: str) -> None:
        await self._backend().release(player_uid, connection_id)

    def reset(self) -> None:
        """Forget every place (tests)."""
        self._backend().reset()


live_connections = LiveConnections()
