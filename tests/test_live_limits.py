"""The live connection count in Redis under a burst: many clients connecting or dropping at
once (a lobby opening, a network blip) each get and give back their place."""

from __future__ import annotations

import asyncio
import os
import uuid

from sessions_app.live.limits import RedisConnections

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def test_with_redis_a_burst_larger_than_the_client_pool_waits_for_connections_instead_of_failing(settings):
    # redis-py's asyncio pool holds 100 connections; 300 connections opening and closing at
    # once must queue for them, not fail (a failed release would hold the place for a lease).
    settings.LIVE_MAX_CONNECTIONS_PER_PLAYER = 1000
    places = RedisConnections(REDIS_URL, f"test-live-{uuid.uuid4().hex[:8]}")
    connections = [f"connection-{n}" for n in range(300)]

    async def burst() -> tuple[list[bool], int, int]:
        acquired = await asyncio.gather(*(places.acquire("player", c) for c in connections))
        held = await places._client().zcard(places._key("player"))
        await asyncio.gather(*(places.release("player", c) for c in connections))
        left = await places._client().zcard(places._key("player"))
        return acquired, held, left

    acquired, held, left = asyncio.run(burst())

    assert acquired == [True] * 300
    assert held == 300
    assert left == 0
