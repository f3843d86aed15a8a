"""What a live listener does, whatever carries it (WebSocket or Server-Sent Events).

`open_stream` checks the request before anything is streamed: credentials, the `after` to
resume from, that the caller may see the session, the per-player connection limit. It raises
`Refused` (a WebSocket close code, an HTTP status and a problem document) or returns a
`LiveStream`, whose `run` is the listener's life:

1. subscribe to the groups of its feed (a session's, or a player's and its sessions'),
2. read the log after `after` and send it (the replay), page by page,
3. wait for a wake-up or the keep-alive tick, read the log after the last id sent, send it,
   again, until the client leaves, its token expires (`Closed` 4401) or it stops taking
   messages (`Closed` 4408: a slow consumer is dropped, not buffered for).

Because it subscribes before its first read, and each read starts after the last id sent,
nothing falls between the replay and the live part and nothing is sent twice. The database is
used only for those reads, each a short call on the sync thread (`database_sync_to_async`),
never held while a stream waits.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed

from players_app.authentication import TokenPlayer, stream_credentials
from sessions_project import metrics
from sessions_project.errors import DomainError, problem

from .. import feeds
from .groups import player_group, session_group
from .limits import live_connections

# Events read from the log per query; a replay reads page after page.
PAGE = 100

# Event types after which a listener checks again what it may see: a session's listener
# whether it still may see the session and whether it hosts it; a player's listener which
# sessions make up its feed.
RECHECK_TYPES = frozenset(
    {"session.updated", "session.deleted", "host.changed", "member.joined", "member.left", "member.kicked"}
)


class Refused(Exception):
    """A stream refused before it starts: WebSocket close code, HTTP status, problem body."""

    def __init__(self, ws_code: int, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.ws_code = ws_code
        self.status = status
        self.body = problem(status, code, detail)
        self.headers = headers or {}


class Closed(Exception):
    """A running stream ended by the server: its WebSocket close code and why."""

    def __init__(self, ws_code: int, reason: str):
        super().__init__(reason)
        self.ws_code = ws_code
        self.reason = reason


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _query(scope: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


STREAM_PARAMETERS = frozenset({"after", "token"})


def _after(query: dict[str, str], last_event_id: bytes | None) -> int:
    for name, raw in (("after", query.get("after")), ("Last-Event-ID", last_event_id and last_event_id.decode())):
        if raw is None or raw == "":
            continue
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise Refused(4400, 400, "invalid", f"{name}: a whole number of 0 or more is required.")
        return int(raw)
    return 0


@dataclass
class Feed:
    """What one listener follows: one session's events, or (session_uid None) a player's feed."""

    actor: TokenPlayer
    session_uid: uuid.UUID | None
    hosts: bool = False
    session_uids: set[uuid.UUID] = field(default_factory=set)

    def check(self) -> None:
        """(sync) What the caller may see now; raises NotFound for a session it may not see."""
        if self.session_uid is None:
            self.session_uids = feeds.player_session_uids(self.actor)
            return
        row = feeds.session_access_row(self.session_uid)
        self.hosts = feeds.session_access(self.actor, row)
        if row is None:
            feeds.deleted_session_check(self.session_uid, [])

    def read(self, after: int) -> list[dict[str, Any]]:
        """(sync) The next page of the feed after `after`."""
        if self.session_uid is None:
            return feeds.player_events(self.actor, after=after, limit=PAGE)
        return feeds.session_events(self.actor, self.session_uid, hosts=self.hosts, after=after, limit=PAGE)

    def groups(self) -> set[str]:
        if self.session_uid is not None:
            return {session_group(self.session_uid)}
        return {player_group(self.actor.uid)} | {session_group(uid) for uid in self.session_uids}


async def open_stream(scope: dict[str, Any], session_uid: str | None) -> LiveStream:
    """Check a stream's request (see the module docstring); `session_uid` None: the caller's feed."""
    query = _query(scope)
    unknown = sorted(set(query) - STREAM_PARAMETERS)
    if unknown:
        raise Refused(4400, 400, "unknown_parameter", f"Unknown query parameter: {unknown[0]}.")
    try:
        credentials = stream_credentials(_header(scope, b"authorization"), query.get("token"))
    except AuthenticationFailed as exc:
        code, detail = str(exc.get_codes()), str(exc.detail)
        raise Refused(4401, 401, code, detail, {"WWW-Authenticate": 'JWT realm="api"'}) from None
    after = _after(query, _header(scope, b"last-event-id"))
    parsed: uuid.UUID | None = None
    if session_uid is not None:
        try:
            parsed = uuid.UUID(session_uid)
        except ValueError:
            raise Refused(4404, 404, "session_not_found", "No such session.") from None
    feed = Feed(credentials.player, parsed)
    try:
        await database_sync_to_async(feed.check)()
    except DomainError as exc:
        raise Refused(4404, exc.status_code, exc.code, exc.detail) from None
    connection_id = uuid.uuid4().hex
    if not await live_connections.acquire(credentials.player.uid, connection_id):
        limit = settings.LIVE_MAX_CONNECTIONS_PER_PLAYER
        raise Refused(
            4429,
            429,
            "too_many_live_connections",
            f"At most {limit} live connections per player.",
            {"Retry-After": "15"},
        )
    metrics.LIVE_CONNECTIONS.inc()  # until LiveStream.close
    return LiveStream(feed, after, credentials.expires_at, connection_id)


Send = Callable[[dict[str, Any]], Awaitable[None]]
Keepalive = Callable[[], Awaitable[None]]


class LiveStream:
    """One listener's subscription, replay and live loop (see the module docstring)."""

    def __init__(self, feed: Feed, after: int, expires_at: float, connection_id: str):
        self.feed = feed
        self.last_id = after
        self.expires_at = expires_at
        self.connection_id = connection_id
        self.subscribed: set[str] = set()
        self.closed = False
        self.stopped = False
        self._wake = asyncio.Event()
        self._wake.set()  # the replay: read at once

    def stop(self) -> None:
        """End `run` at its next wait (the client left): cooperative, so that it never stops
        half-way through a send or a read."""
        self.stopped = True
        self._wake.set()

    def wake(self) -> None:
        """A wake-up from the channel layer (cheap: the loop reads once, however many came)."""
        self._wake.set()

    async def subscribe(self, layer: BaseChannelLayer | None, channel_name: str) -> bool:
        """Join the feed's groups now (and leave those no longer in it); whether it joined one."""
        if layer is None:
            return False
        wanted = self.feed.groups()
        joined = bool(wanted - self.subscribed)
        for group in sorted(wanted - self.subscribed):
            await layer.group_add(group, channel_name)
        for group in sorted(self.subscribed - wanted):
            await layer.group_discard(group, channel_name)
        self.subscribed = wanted
        return joined

    async def run(
        self, layer: BaseChannelLayer | None, channel_name: str, send: Send, keepalive: Callable[[], Awaitable[None]]
    ) -> None:
        """Subscribe, replay, then follow the log until the client leaves or `Closed`."""
        await self.subscribe(layer, channel_name)
        interval = settings.LIVE_KEEPALIVE_SECONDS
        while True:
            remaining = self.expires_at - time.time()
            if remaining <= 0:
                raise Closed(4401, "token expired")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(interval, remaining))
                if self.stopped:
                    return
            except TimeoutError:
                if time.time() >= self.expires_at:
                    raise Closed(4401, "token expired") from None
                await self._send_in_time(keepalive)
                await live_connections.refresh(self.feed.actor.uid, self.connection_id)
            self._wake.clear()
            await self.catch_up(layer, channel_name, send)

    async def catch_up(self, layer: BaseChannelLayer | None, channel_name: str, send: Send) -> None:
        """Send what the log holds after the last id sent, page by page."""
        while True:
            page = await database_sync_to_async(self.feed.read)(self.last_id)
            for event in page:
                await self._send_in_time(functools.partial(send, event))
                self.last_id = event["id"]
            if any(event["type"] in RECHECK_TYPES for event in page):
                try:
                    await database_sync_to_async(self.feed.check)()
                except DomainError:
                    await self._last_words(send)
                    raise Closed(4404, "session not visible") from None
                if await self.subscribe(layer, channel_name):
                    continue  # read again: a wake-up of a new group may have come before joining it
            if len(page) < PAGE:
                return

    async def _last_words(self, send: Send) -> None:
        """The caller may no longer see the session (the check may run after more changes than
        the page it follows): send the events up to the one that says why, then no more."""
        for event in await database_sync_to_async(self.feed.read)(self.last_id):
            await self._send_in_time(functools.partial(send, event))
            self.last_id = event["id"]
            removed = event["type"] in ("member.left", "member.kicked") and event["data"].get("playerUid") == str(
                self.feed.actor.uid
            )
            if removed or event["type"] in ("session.deleted", "session.updated"):
                return

    async def _send_in_time(self, sending: Callable[[], Awaitable[None]]) -> None:
        try:
            await asyncio.wait_for(sending(), timeout=settings.LIVE_SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Closed(4408, "slow consumer") from None

    async def close(self, layer: BaseChannelLayer | None, channel_name: str) -> None:
        """Leave the groups and give the connection's place back."""
        if layer is not None:
            for group in sorted(self.subscribed):
                await layer.group_discard(group, channel_name)
        self.subscribed = set()
        if not self.closed:
            self.closed = True
            metrics.LIVE_CONNECTIONS.dec()
            await live_connections.release(self.feed.actor.uid, self.connection_id)
