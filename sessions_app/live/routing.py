"""The live routes' URLs (served by the ASGI application, sessions_project/asgi.py)."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from .consumers import LiveSocketConsumer, event_stream_app


class UnknownSocketRoute(AsyncWebsocketConsumer):
    """A WebSocket to any other path: accepted, then closed with 4404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404, reason="not_found")

    async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
        """Nothing is listened to."""


websocket_urlpatterns = [
    path("api/v1/sessions/<str:uid>/live", LiveSocketConsumer.as_asgi()),
    path("api/v1/players/me/live", LiveSocketConsumer.as_asgi()),
    re_path(r"", UnknownSocketRoute.as_asgi()),
]

# HTTP routes served outside Django's request cycle (the rest of HTTP goes to Django). Channels'
# URLRouter takes ASGI applications where Django's stubs expect views.
stream_urlpatterns = [
    path("api/v1/sessions/<str:uid>/events/stream", event_stream_app),  # type: ignore[arg-type]
    path("api/v1/players/me/events/stream", event_stream_app),  # type: ignore[arg-type]
]
