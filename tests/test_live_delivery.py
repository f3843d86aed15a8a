"""Live delivery: a session's events and a player's feed pushed over WebSocket and Server-Sent
Events as REST requests change sessions, resumed with ?after= and Last-Event-ID, with the
refusals of bad credentials, unseen sessions and too many connections."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import override_settings

from sessions_app.models import Invite
from sessions_app.services import invites, membership, sessions
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .live_client import access_token, close_code, next_event, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_live_places_held")]


HARBOR = {"data": {"map": "harbor"}}


def live(session) -> str:
    return f"/api/v1/sessions/{session.uid}/live"


def test_a_member_listening_receives_a_join_made_through_the_api(api, host, member):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})
    newcomer = PlayerFactory()
    host_token = access_token(host)

    async def scenario():
        communicator = socket(live(session), host_token)
        assert await communicator.connect()
        assert (await next_event(communicator))["type"] == "session.created"  # the replay
        response = await call(lambda: api.as_(newcomer).post(f"/api/v1/sessions/{session.uid}/join"))
        assert response.status_code == 200
        event = await next_event(communicator)
        assert event["type"] == "member.joined"
        assert event["data"]["playerUid"] == str(newcomer.uid)
        await communicator.disconnect()

    async_to_sync(scenario)()


def call(request):
    """A REST request made from the scenario (the test's thread runs it, as a server would)."""
    return sync_to_async(request)()


def test_after_replays_exactly_what_was_missed_then_continues_live(api, host, member):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})
    join = f"/api/v1/sessions/{session.uid}/join"
    api.as_(member).post(join)
    api.as_(member).post(f"/api/v1/sessions/{session.uid}/leave")
    logged = api.as_(host).get(f"/api/v1/sessions/{session.uid}/events").json()
    assert [e["type"] for e in logged] == ["session.created", "member.joined", "member.left"]
    host_token = access_token(host)

    async def scenario():
        communicator = socket(f"{live(session)}?after={logged[0]['id']}", host_token)
        assert await communicator.connect()
        assert [await next_event(communicator) for _ in range(2)] == logged[1:]
        await call(lambda: api.as_(member).post(join))
        event = await next_event(communicator)
        assert (event["type"], event["id"] > logged[-1]["id"]) == ("member.joined", True)
        assert await communicator.receive_nothing(timeout=0.3)  # nothing repeated
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_change_rolled_back_sends_nothing(api, host, member, outsider):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 2})  # one free place
    host_token = access_token(host)

    async def scenario():
        communicator = socket(live(session), host_token)
        assert await communicator.connect()
        assert (await next_event(communicator))["type"] == "session.created"
        assert (await call(lambda: api.as_(member).post(f"/api/v1/sessions/{session.uid}/join"))).status_code == 200
        assert (await call(lambda: api.as_(outsider).post(f"/api/v1/sessions/{session.uid}/join"))).status_code == 409
        assert (await call(lambda: api.as_(member).post(f"/api/v1/sessions/{session.uid}/leave"))).status_code == 200
        # The refused join made no event: the member's join is followed by its leave.
        received = [await next_event(communicator) for _ in range(2)]
        assert [(e["type"], e["data"]["playerUid"]) for e in received] == [
            ("member.joined", str(member.uid)),
            ("member.left", str(member.uid)),
        ]
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_players_feed_brings_an_invite_to_a_session_it_does_not_know_yet(host, member):
    private = session_create(actor=host, values={"visibility": "private"})
    member_token = access_token(member)

    async def scenario():
        communicator = socket("/api/v1/players/me/live", member_token)
        assert await communicator.connect()
        await call(lambda: invites.invite_create(session_id=private.pk, actor=host, player_uid=member.uid))
        event = await next_event(communicator)
        assert (event["type"], event["sessionUid"], event["data"]["playerUid"]) == (
            "invite.created",
            str(private.uid),
            str(member.uid),
        )
        # Once in, the session's other events reach the feed too.
        invite = await call(lambda: Invite.objects.get(session=private, player=member))
        await call(lambda: invites.invite_accept(invite_id=invite.pk, actor=member))
        assert [(await next_event(communicator))["type"] for _ in range(2)] == ["member.joined", "invite.accepted"]
        await call(lambda: sessions.session_update(session_id=private.pk, actor=host, values=HARBOR))
        updated = await next_event(communicator)
        assert (updated["type"], updated["data"]["changes"]) == ("session.updated", {"data": {"map": "harbor"}})
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_other_players_invites_to_a_private_session_reach_its_host_but_not_its_members(host, member, outsider):
    private = session_create(actor=host, values={"visibility": "private"})
    membership.session_join(session_id=private.pk, actor=member, via_invite=True)
    host_token = access_token(host)
    member_token = access_token(member)

    async def scenario():
        hosts = socket(live(private), host_token)
        members = socket(live(private), member_token)
        for communicator in (hosts, members):
            assert await communicator.connect()
            assert [(await next_event(communicator))["type"] for _ in range(2)] == ["session.created", "member.joined"]
        await call(lambda: invites.invite_create(session_id=private.pk, actor=host, player_uid=outsider.uid))
        await call(lambda: sessions.session_update(session_id=private.pk, actor=host, values=HARBOR))
        assert [(await next_event(hosts))["type"] for _ in range(2)] == ["invite.created", "session.updated"]
        assert (await next_event(members))["type"] == "session.updated"
        for communicator in (hosts, members):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_member_kicked_from_a_private_session_gets_the_kick_then_a_4404_close(host, member):
    private = session_create(actor=host, values={"visibility": "private"})
    membership.session_join(session_id=private.pk, actor=member, via_invite=True)
    member_token = access_token(member)

    async def scenario():
        communicator = socket(live(private), member_token)
        assert await communicator.connect()
        assert [(await next_event(communicator))["type"] for _ in range(2)] == ["session.created", "member.joined"]
        await call(lambda: membership.session_kick(session_id=private.pk, actor=host, player_uid=member.uid))
        assert (await next_event(communicator))["type"] == "member.kicked"
        assert await close_code(communicator) == 4404

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    ("token", "query_token"),
    [(None, False), ("not-a-token", False), ("not-a-token", True)],
    ids=["no credentials", "bad header token", "bad query token"],
)
def test_a_socket_without_valid_credentials_is_closed_with_4401(host, token, query_token):
    session = session_create(actor=host, values={})

    async def scenario():
        communicator = socket(live(session), token, query_token=query_token)
        assert await communicator.connect()
        assert await close_code(communicator) == 4401

    async_to_sync(scenario)()


def test_a_token_in_the_query_is_accepted_on_the_live_routes(host):
    session = session_create(actor=host, values={})
    host_token = access_token(host)

    async def scenario():
        communicator = socket(live(session), host_token, query_token=True)
        assert await communicator.connect()
        assert (await next_event(communicator))["type"] == "session.created"
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_socket_is_closed_with_4401_when_its_token_expires(host):
    session = session_create(actor=host, values={})
    expiring = access_token(host, exp=int(time.time()) + 1)

    async def scenario():
        communicator = socket(live(session), expiring)
        assert await communicator.connect()
        assert (await next_event(communicator))["type"] == "session.created"
        assert await close_code(communicator, timeout=10) == 4401

    async_to_sync(scenario)()


@pytest.mark.parametrize("which", ["private", "unknown", "not a uid", "unknown route"])
def test_a_socket_to_a_session_the_caller_may_not_see_is_closed_with_4404(host, outsider, which):
    private = session_create(actor=host, values={"visibility": "private"})
    path = {
        "private": live(private),
        "unknown": f"/api/v1/sessions/{uuid.uuid4()}/live",
        "not a uid": "/api/v1/sessions/harbor/live",
        "unknown route": "/api/v1/sessions/live",
    }[which]
    outsider_token = access_token(outsider)

    async def scenario():
        communicator = socket(path, outsider_token)
        assert await communicator.connect()
        assert await close_code(communicator) == 4404

    async_to_sync(scenario)()


def test_a_bad_after_closes_the_socket_with_4400(host):
    session = session_create(actor=host, values={})
    host_token = access_token(host)

    async def scenario():
        communicator = socket(f"{live(session)}?after=-1", host_token)
        assert await communicator.connect()
        assert await close_code(communicator) == 4400

    async_to_sync(scenario)()


@override_settings(LIVE_MAX_CONNECTIONS_PER_PLAYER=2)
def test_a_player_past_its_live_connections_is_refused_with_4429_until_one_closes(host):
    session = session_create(actor=host, values={})
    token = access_token(host)

    async def scenario():
        first, second, third = (socket(live(session), token) for _ in range(3))
        for communicator in (first, second):
            assert await communicator.connect()
            assert (await next_event(communicator))["type"] == "session.created"
        assert await third.connect()
        assert await close_code(third) == 4429
        await first.disconnect()
        again = socket(live(session), token)
        assert await again.connect()
        assert (await next_event(again))["type"] == "session.created"
        for communicator in (second, again):
            await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.fixture
def redis_layer(settings):
    """The production layout's channel layer and connection count: Redis (REDIS_URL)."""
    from channels.layers import channel_layers

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": prefix},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_with_redis_a_member_listening_receives_a_join(redis_layer, api, host, member):
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})
    host_token = access_token(host)

    async def scenario():
        communicator = socket(live(session), host_token)
        assert await communicator.connect()
        assert (await next_event(communicator))["type"] == "session.created"
        await call(lambda: api.as_(member).post(f"/api/v1/sessions/{session.uid}/join"))
        assert (await next_event(communicator))["type"] == "member.joined"
        await communicator.disconnect()

    async_to_sync(scenario)()


@override_settings(LIVE_MAX_CONNECTIONS_PER_PLAYER=1)
def test_with_redis_the_connection_limit_is_counted_in_redis(redis_layer, host):
    session = session_create(actor=host, values={})
    host_token = access_token(host)

    async def scenario():
        first, second = socket(live(session), host_token), socket(live(session), host_token)
        assert await first.connect()
        assert (await next_event(first))["type"] == "session.created"
        assert await second.connect()
        assert await close_code(second) == 4429
        await first.disconnect()

    async_to_sync(scenario)()


def test_a_stream_whose_reads_fail_closes_with_1011_for_the_client_to_resume(host, monkeypatch):
    from django.db import OperationalError

    from sessions_app.live import streams

    session = session_create(actor=host, values={})
    host_token = access_token(host)

    def unavailable(*args, **kwargs):
        raise OperationalError("the database is unavailable")

    async def scenario():
        communicator = socket(live(session), host_token)
        monkeypatch.setattr(streams.feeds, "session_events", unavailable)
        assert await communicator.connect()
        assert await close_code(communicator) == 1011

    async_to_sync(scenario)()
