"""Where wake-ups go: a process whose in-process channel layer no listener ever attached to (a
WSGI worker without Redis) sends none, for nobody could receive them there."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import channel_layers

from sessions_app.event_models import EventType
from sessions_app.live import publish
from sessions_app.live.groups import session_group
from sessions_app.services import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_publisher(monkeypatch, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    monkeypatch.setattr(publish, "_serving_loop", None)
    monkeypatch.setattr(publish, "_own_loop", None)
    yield
    channel_layers.backends.clear()


def _batch(session):
    return [events.event(session, EventType.SESSION_UPDATED, actor=None, data={"changes": {}})]


def test_a_process_no_listener_attached_to_hands_no_wake_up_on(fresh_publisher, session):
    publish.publish(_batch(session))

    assert publish._own_loop is None  # no publisher thread started, nothing sent


def test_a_process_serving_listeners_wakes_them_on_its_own_loop(fresh_publisher, session):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    layer = channel_layers["default"]
    try:
        channel = asyncio.run_coroutine_threadsafe(layer.new_channel(), loop).result(5)
        asyncio.run_coroutine_threadsafe(layer.group_add(session_group(session.uid), channel), loop).result(5)
        publish.attach_loop(loop)

        publish.publish(_batch(session))

        message = asyncio.run_coroutine_threadsafe(layer.receive(channel), loop).result(5)
        assert message["type"] == "live.wake"
        assert publish._own_loop is None
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
