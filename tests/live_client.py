"""Test clients of the live routes: WebSocket (Channels' communicator) and Server-Sent Events
(the ASGI application driven directly), both in the test's process, and access tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from asgiref.testing import ApplicationCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from players_app.authentication import player_claims
from sessions_project.asgi import application


def access_token(player, **claims: Any) -> str:
    """An access token for the player, as POST /auth/token issues it (claims override)."""
    token = AccessToken.for_user(player)
    for name, value in {**player_claims(player), **claims}.items():
        token[name] = value
    return str(token)


class Socket(ApplicationCommunicator):
    """A WebSocket to the ASGI application, as a server would carry it (Channels' own
    communicator lives in a package that needs daphne, which the project does not use)."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]]):
        path, _, query = path.partition("?")
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(application, scope)

    async def connect(self, timeout: float = 5) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return (await self.receive_output(timeout))["type"] == "websocket.accept"

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        try:
            await self.wait(timeout)
        except asyncio.CancelledError:
            pass


def socket(path: str, token: str | None = None, *, query_token: bool = False) -> Socket:
    """A WebSocket to `path`, with the token in the Authorization header (or the query)."""
    headers = []
    if token and query_token:
        path += ("&" if "?" in path else "?") + f"token={token}"
    elif token:
        headers.append((b"authorization", f"jwt {token}".encode()))
    return Socket(path, headers)


async def next_event(communicator: Socket, timeout: float = 5) -> dict[str, Any]:
    message = await communicator.receive_output(timeout)
    assert message["type"] == "websocket.send", message
    return orjson.loads(message["text"])


async def close_code(communicator: Socket, timeout: float = 5) -> int:
    """The code the server closed the socket with."""
    message = await communicator.receive_output(timeout)
    assert message["type"] == "websocket.close", message
    return int(message.get("code", 1000))


class EventStream:
    """An SSE request to the ASGI application: its status, headers, and the events parsed from
    its body as they come."""

    def __init__(self, path: str, token: str | None = None, headers: list[tuple[bytes, bytes]] | None = None):
        path, _, query = path.partition("?")
        sent = list(headers or [])
        if token:
            sent.append((b"authorization", f"jwt {token}".encode()))
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": sent,
        }
        self.app = ApplicationCommunicator(application, scope)
        self.buffer = b""
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    async def start(self, timeout: float = 5) -> int:
        await self.app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await self.app.receive_output(timeout)
        self.status = start["status"]
        self.headers = dict(start["headers"])
        return self.status

    async def body(self, timeout: float = 5) -> bytes:
        """The whole body of a response that ends (a refusal)."""
        chunks = b""
        while True:
            message = await self.app.receive_output(timeout)
            chunks += message.get("body", b"")
            if not message.get("more_body"):
                return chunks

    async def next_block(self, timeout: float = 5) -> bytes:
        """The next SSE block (comment or event), up to its blank line."""
        while b"\n\n" not in self.buffer:
            message = await self.app.receive_output(timeout)
            self.buffer += message.get("body", b"")
            if not message.get("more_body"):
                raise EOFError("the stream ended")
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        return block

    async def next_event(self, timeout: float = 5) -> dict[str, str]:
        """The next event's fields (`id`, `event`, `data`), skipping comments."""
        while True:
            block = await self.next_block(timeout)
            if not block.startswith(b":"):
                fields = dict(line.split(b": ", 1) for line in block.split(b"\n"))
                return {name.decode(): value.decode() for name, value in fields.items()}

    async def leave(self) -> None:
        await self.app.send_input({"type": "http.disconnect"})
        try:
            await self.app.wait(timeout=5)
        except asyncio.CancelledError:
            pass
