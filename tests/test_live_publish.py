"""Where wake-ups go: a process whose in-process channel layer no listener ever attached to (a
WSGI worker without Redis) sends none, for nobody could receive them there; with Redis they are
published from the request's thread, and Redis being down fails no write."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

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


@pytest.fixture
def unreachable_redis_layer(monkeypatch, settings):
    """The Redis pub/sub layer pointed at a port nobody listens on."""
    with socket.socket() as probe:  # a free port, closed again: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"], "prefix": "test-down"},
        }
    }
    channel_layers.backends.clear()
    monkeypatch.setattr(publish, "_publisher_of", None)
    yield
    channel_layers.backends.clear()


def test_a_join_succeeds_while_redis_is_down_and_the_publisher_then_rests(
    unreachable_redis_layer, api, host, member, make_session, caplog, django_capture_on_commit_callbacks
):
    made = make_session(host)

    with django_capture_on_commit_callbacks(execute=True):  # the wake-ups go once committed
        response = api.as_(member).post(f"/api/v1/sessions/{made.uid}/join")

    assert response.status_code == 200, response.json()
    assert "could not publish" in caplog.text
    publisher = publish._redis_publisher()
    assert publisher is not None
    assert publisher.resting_until > time.monotonic()  # LIVE_PUBLISH_BACKOFF_SECONDS from the failure

    def must_not_be_called(*args, **kwargs):
        raise AssertionError("Redis was tried again while resting")

    publisher.client.pipeline = must_not_be_called  # type: ignore[method-assign]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.as_(member).post(f"/api/v1/sessions/{made.uid}/leave").status_code == 200
