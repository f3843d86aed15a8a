"""Server-Sent Events routes: events as `id:`/`event:`/`data:` blocks, resumed by
Last-Event-ID or ?after=, a keep-alive comment, refusals as problem documents before the
stream starts; and a slow consumer dropped instead of buffered for."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import override_settings
from prometheus_client import REGISTRY

from sessions_app.live.streams import Closed, Feed, LiveStream
from sessions_app.services import membership
from sessions_app.services.sessions import session_create

from .conftest import as_token
from .live_client import EventStream, access_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_live_places_held")]


def stream(session) -> str:
    return f"/api/v1/sessions/{session.uid}/events/stream"


def test_a_stream_sends_each_event_with_its_id_type_and_json(api, host, member):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        events = EventStream(stream(session), token, [(b"accept", b"text/event-stream")])
        assert await events.start() == 200
        assert events.headers[b"content-type"].startswith(b"text/event-stream")
        created = await events.next_event()
        assert created["event"] == "session.created"
        await sync_to_async(lambda: membership.session_join(session_id=session.pk, actor=member))()
        joined = await events.next_event()
        document = orjson.loads(joined["data"])
        assert (joined["event"], int(joined["id"])) == ("member.joined", document["id"])
        assert document["data"]["playerUid"] == str(member.uid)
        rest = await sync_to_async(lambda: api.as_(host).get(f"/api/v1/sessions/{session.uid}/events").json())()
        assert [orjson.loads(created["data"]), document] == rest  # the shape of the events endpoint
        await events.leave()

    async_to_sync(scenario)()


@pytest.mark.parametrize("resume", ["Last-Event-ID", "after"])
def test_a_stream_resumes_after_the_last_event_id_it_is_given(host, member, resume):
    session = session_create(actor=host, values={})
    membership.session_join(session_id=session.pk, actor=member)
    membership.session_leave(session_id=session.pk, actor=member)
    token = access_token(host)

    async def scenario():
        first = EventStream(stream(session), token)
        await first.start()
        ids = [int((await first.next_event())["id"]) for _ in range(3)]
        await first.leave()
        if resume == "after":
            again = EventStream(f"{stream(session)}?after={ids[0]}", token)
        else:
            again = EventStream(stream(session), token, [(b"last-event-id", str(ids[0]).encode())])
        await again.start()
        assert [int((await again.next_event())["id"]) for _ in range(2)] == ids[1:]
        await again.leave()

    async_to_sync(scenario)()


@override_settings(LIVE_KEEPALIVE_SECONDS=1)
def test_a_quiet_stream_sends_a_keep_alive_comment(host):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        events = EventStream(f"{stream(session)}?after=999999", token)
        await events.start()
        assert await events.next_block() == b": connected"
        assert await events.next_block(timeout=5) == b": keep-alive"
        await events.leave()

    async_to_sync(scenario)()


def test_the_players_feed_streams_too(host, member):
    session = session_create(actor=host, values={})
    token = access_token(member)

    async def scenario():
        events = EventStream("/api/v1/players/me/events/stream", token)
        assert await events.start() == 200
        await sync_to_async(lambda: membership.session_join(session_id=session.pk, actor=member))()
        # Now a member, the session's whole log is part of its feed.
        assert [(await events.next_event())["event"] for _ in range(2)] == ["session.created", "member.joined"]
        await events.leave()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    ("path", "credentials", "status", "code"),
    [
        ("own", None, 401, "not_authenticated"),
        ("own", "bad", 401, "token_not_valid"),
        ("private", "outsider", 404, "session_not_found"),
        ("own?after=x", "host", 400, "invalid"),
        ("own?limit=5", "host", 400, "unknown_parameter"),
    ],
)
def test_a_refused_stream_answers_a_problem_before_streaming(host, outsider, path, credentials, status, code):
    own = session_create(actor=host, values={})
    private = session_create(actor=host, values={"visibility": "private"})
    token = {"host": access_token(host), "outsider": access_token(outsider), "bad": "bad", None: None}[credentials]
    url = stream(own) + path[3:] if path.startswith("own") else stream(private)

    async def scenario():
        events = EventStream(url, token)
        assert await events.start() == status
        assert events.headers[b"content-type"] == b"application/problem+json"
        assert orjson.loads(await events.body())["code"] == code

    async_to_sync(scenario)()


def open_connections() -> float:
    return REGISTRY.get_sample_value("sessions_live_connections") or 0.0


def test_open_streams_are_counted_for_metrics_until_they_end(host):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        before = open_connections()
        events = EventStream(stream(session), token)
        assert await events.start() == 200
        assert open_connections() == before + 1
        await events.leave()
        assert open_connections() == before

    async_to_sync(scenario)()


@override_settings(LIVE_MAX_CONNECTIONS_PER_PLAYER=1)
def test_a_stream_past_the_players_live_connections_is_refused_with_429(host):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        first = EventStream(stream(session), token)
        assert await first.start() == 200
        second = EventStream(stream(session), token)
        assert await second.start() == 429
        assert second.headers[b"retry-after"] == b"15"
        assert orjson.loads(await second.body())["code"] == "too_many_live_connections"
        await first.leave()

    async_to_sync(scenario)()


def test_a_stream_that_asks_for_another_media_type_is_refused_with_406(host):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        events = EventStream(stream(session), token, [(b"accept", b"application/json")])
        assert await events.start() == 406

    async_to_sync(scenario)()


@override_settings(LIVE_SEND_TIMEOUT_SECONDS=1)
def test_a_listener_that_stops_taking_messages_is_dropped_as_a_slow_consumer(host):
    session = session_create(actor=host, values={})
    listener = LiveStream(Feed(as_token(host), session.uid), after=0, expires_at=float("inf"), connection_id="slow")

    async def never_taken(event):
        await asyncio.Event().wait()  # the client's socket stays full

    async def scenario():
        with pytest.raises(Closed) as closed:
            await listener.catch_up(None, "", never_taken)
        assert closed.value.ws_code == 4408

    async_to_sync(scenario)()
