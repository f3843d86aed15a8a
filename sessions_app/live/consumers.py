"""The live routes: a WebSocket consumer and a Server-Sent Events application, both thin
carriers of a `streams.LiveStream` (which holds every rule).

WebSocket close codes: 1011 the stream failed (the database or the channel layer; reconnect
with ?after=), 4400 a bad query (`after`, an unknown parameter), 4401 no or bad
credentials or a token that expired while connected, 4404 a session the caller may not see
(or that does not exist, or that it may no longer see), 4408 a slow consumer, 4429 too many
live connections for the player. The SSE routes answer the same refusals as HTTP problems
(400, 401, 404, 429) before the stream starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from sessions_project.errors import PROBLEM_CONTENT_TYPE, problem

from .groups import WAKE
from .publish import attach_loop
from .streams import Closed, LiveStream, Refused, open_stream

logger = logging.getLogger(__name__)

# Seconds a stream whose client left may take to finish what it was doing.
LEAVING_SECONDS = 2


class LiveSocketConsumer(AsyncWebsocketConsumer):
    """GET /api/v1/sessions/{uid}/live and /api/v1/players/me/live, upgraded to a WebSocket:
    one text message per event, the JSON of the events endpoints."""

    stream: LiveStream | None = None
    runner: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        attach_loop(asyncio.get_running_loop())
        # Accepted first, then closed with a code a client can read (a refused handshake
        # would be a bare HTTP 403 to it).
        await self.accept()
        try:
            self.stream = await open_stream(self.scope, self.scope["url_route"]["kwargs"].get("uid"))
        except Refused as refused:
            await self.close(code=refused.ws_code, reason=refused.body["code"])
            return
        self.runner = asyncio.create_task(self._run(self.stream))

    async def _run(self, stream: LiveStream) -> None:
        try:
            await stream.run(self.channel_layer, self.channel_name, self._send_event, self._keepalive)
        except Closed as closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.close(code=closed.ws_code, reason=closed.reason), timeout=1)
        except Exception:  # the database or the layer failed: the client reconnects with ?after=
            logger.exception("live: a stream failed")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.close(code=1011, reason="try again"), timeout=1)

    async def _send_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=orjson.dumps(event).decode())

    async def _keepalive(self) -> None:
        """Nothing to send: the server's WebSocket pings keep the connection alive."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The route only sends; what a client sends is ignored."""

    async def live_wake(self, message: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.wake()

    async def disconnect(self, code: int) -> None:
        if self.runner is not None and self.stream is not None:
            self.stream.stop()
            await asyncio.wait([self.runner], timeout=LEAVING_SECONDS)
            self.runner.cancel()  # a send or read still under way after that
        if self.stream is not None:
            await self.stream.close(self.channel_layer, self.channel_name)
            self.stream = None


def sse_event(event: dict[str, Any]) -> bytes:
    """One event as an SSE message: `id:`, `event:` and `data:` (one line of JSON)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event["id"], event["type"].encode(), orjson.dumps(event))


async def _problem(send: Any, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"cache-control", b"no-store"),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def _accepts_event_stream(scope: dict[str, Any]) -> bool:
    accept = next((value for key, value in scope.get("headers", ()) if key.lower() == b"accept"), None)
    if accept is None:
        return True
    kinds = {part.split(b";")[0].strip().lower() for part in accept.split(b",")}
    return bool(kinds & {b"text/event-stream", b"text/*", b"*/*"})


async def event_stream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET /api/v1/sessions/{uid}/events/stream and /api/v1/players/me/events/stream: the
    events as Server-Sent Events (a plain ASGI application: an SSE response lasts as long as
    the client stays, which a consumer's one-shot `handle` does not allow)."""
    attach_loop(asyncio.get_running_loop())
    if scope["method"] not in ("GET", "HEAD"):
        body = problem(405, "method_not_allowed", f'Method "{scope["method"]}" not allowed.')
        await _problem(send, 405, body, {"Allow": "GET, HEAD"})
        return
    if not _accepts_event_stream(scope):
        body = problem(406, "not_acceptable", "This route answers text/event-stream only.")
        await _problem(send, 406, body, {})
        return
    try:
        stream = await open_stream(scope, scope["url_route"]["kwargs"].get("uid"))
    except Refused as refused:
        await _problem(send, refused.status, refused.body, refused.headers)
        return

    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else ""
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),  # nginx: pass each message on at once
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        await stream.close(layer, channel)
        return

    async def chunk(body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    async def deliver(event: dict[str, Any]) -> None:
        await chunk(sse_event(event))

    async def keepalive() -> None:
        await chunk(b": keep-alive\n\n")

    async def wake_ups() -> None:
        while layer is not None:
            message = await layer.receive(channel)
            if message.get("type") == WAKE:
                stream.wake()

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    await chunk(b": connected\n\n")
    tasks = [
        asyncio.create_task(stream.run(layer, channel, deliver, keepalive)),
        asyncio.create_task(wake_ups()),
        asyncio.create_task(client_left()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            closed = task.exception()
            if isinstance(closed, Closed):
                # The client reconnects with Last-Event-ID (and a fresh token): end cleanly.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(send({"type": "http.response.body", "body": b""}), timeout=1)
            elif closed is not None:  # the database or the layer failed: end; the client resumes
                logger.error("live: a stream failed", exc_info=closed)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(send({"type": "http.response.body", "body": b""}), timeout=1)
    finally:
        stream.stop()
        for task in tasks[1:]:
            task.cancel()
        await asyncio.wait(tasks, timeout=LEAVING_SECONDS)
        tasks[0].cancel()  # a send or read still under way after that
        await stream.close(layer, channel)
