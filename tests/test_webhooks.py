"""Webhook deliveries to a real receiver on 127.0.0.1: signed bodies in the events endpoint's
shape, the event types an endpoint wants, retries with backoff (on the `clock`, never by
sleeping), giving up, disabling a failing endpoint, enabling it again, replays and tests."""

from __future__ import annotations

import json
import socket

import pytest
from prometheus_client import REGISTRY

from sessions_app.event_models import EventType, SessionEvent
from sessions_app.services import webhooks
from sessions_app.services.membership import session_join
from sessions_app.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from sessions_project import outbound
from sessions_project.errors import InvalidInput

from .webhook_receiver import HANG, verify

pytestmark = pytest.mark.django_db


def register(url: str, *types: str) -> WebhookEndpoint:
    return webhooks.endpoint_register(endpoint=WebhookEndpoint(url=url, event_types=list(types)))


def test_an_event_is_posted_signed_in_the_shape_of_the_events_endpoint(receiver, api, host, make_session):
    endpoint = register(receiver.url())
    session = make_session(host)

    done = webhooks.worker_pass()

    assert (done.created, done.sent, done.succeeded) == (1, 1, 1)
    [request] = receiver.received
    # The very bytes the events endpoint answers (it answers a list of one).
    listed = api.as_(host).get(f"/api/v1/sessions/{session.uid}/events").content
    assert listed == b"[" + request.body + b"]"
    assert json.loads(request.body)["type"] == "session.created"
    assert verify(endpoint.secret, request.headers["X-Session-Signature"], request.body)
    assert not verify("whsec_another", request.headers["X-Session-Signature"], request.body)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Session-Event"] == "session.created"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 1, None)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200
    assert attempt.error == ""
    assert attempt.answer_excerpt.startswith("answer 200 ")
    assert len(attempt.answer_excerpt) == 1024  # the answer's first kilobyte only


def test_an_endpoint_gets_only_the_event_types_it_wants(receiver, host, member, make_session):
    joins = register(receiver.url("/joins"), EventType.MEMBER_JOINED)
    everything = register(receiver.url("/all"))
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    webhooks.worker_pass()

    by_path = {
        path: [json.loads(r.body)["type"] for r in receiver.received if r.path == path] for path in ("/joins", "/all")
    }
    assert by_path == {"/joins": ["member.joined"], "/all": ["session.created", "member.joined"]}
    assert joins.wants("member.joined")
    assert not joins.wants("session.created")
    assert everything.wants("session.created")


def test_events_written_before_an_endpoint_was_registered_are_not_sent(receiver, host, make_session):
    make_session(host)
    register(receiver.url())
    make_session(host)

    webhooks.worker_pass()

    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0].body)["id"] == SessionEvent.objects.latest("id").pk


def test_no_delivery_is_made_for_an_inactive_endpoint(receiver, host, make_session):
    endpoint = register(receiver.url())
    webhooks.endpoint_disable(endpoint_id=endpoint.pk, reason="paused by staff")
    make_session(host)

    assert webhooks.worker_pass().created == 0
    assert receiver.received == []


def delivered(outcome: str) -> float:
    return REGISTRY.get_sample_value("sessions_webhook_deliveries_total", {"outcome": outcome}) or 0.0


def test_failures_are_retried_with_exponential_backoff_until_a_2xx(receiver, settings, clock, host, make_session):
    settings.WEBHOOK_READ_TIMEOUT = 0.3  # the HANG answer times out
    register(receiver.url())
    make_session(host)
    receiver.answer(500, HANG, 200)
    outcomes = {outcome: delivered(outcome) for outcome in ("failed", "succeeded")}

    webhooks.worker_pass()  # attempt 1: 500
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.FAILED, 1, "answered 500")
    assert delivery.next_attempt_at == clock.now + webhooks.backoff(1)

    clock.advance(seconds=29)
    assert webhooks.worker_pass().sent == 0  # not due yet
    clock.advance(seconds=1)
    webhooks.worker_pass()  # attempt 2: timed out
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.FAILED, 2, "timed out")
    assert delivery.next_attempt_at == clock.now + webhooks.backoff(2)

    clock.advance(seconds=59)
    assert webhooks.worker_pass().sent == 0
    clock.advance(seconds=1)
    webhooks.worker_pass()  # attempt 3: 200

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 3, None)
    assert [(a.status_code, a.error) for a in delivery.attempt_rows.order_by("id")] == [
        (500, "answered 500"),
        (None, "timed out"),
        (200, ""),
    ]
    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1  # the same body every time
    # /metrics counts each attempt by outcome.
    assert delivered("failed") - outcomes["failed"] == 2
    assert delivered("succeeded") - outcomes["succeeded"] == 1


def test_backoff_doubles_up_to_its_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 100

    assert [webhooks.backoff(n).total_seconds() for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]


def test_a_refused_connection_is_retried_and_delivered_once_the_url_answers(receiver, clock, host, make_session):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    endpoint = register(f"http://127.0.0.1:{closed_port}/hook")
    make_session(host)

    webhooks.worker_pass()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "ConnectionRefusedError" in delivery.last_error

    endpoint.url = receiver.url()  # staff fix the URL
    endpoint.save()
    clock.advance(seconds=30)
    webhooks.worker_pass()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert len(receiver.received) == 1


def test_a_delivery_is_given_up_after_the_last_attempt(receiver, settings, clock, host, make_session):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.default = 503
    endpoint = register(receiver.url())
    make_session(host)

    for _ in range(5):
        webhooks.worker_pass()
        clock.advance(hours=1)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.DEAD, 3, None)
    assert len(receiver.received) == 3
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_dead, endpoint.consecutive_failures) == (True, 1, 3)


def test_an_endpoint_is_disabled_after_dead_deliveries_in_a_row(receiver, settings, host, make_session):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_DISABLE_AFTER_DEAD = 2
    receiver.default = 500
    endpoint = register(receiver.url())
    make_session(host)
    make_session(host)

    webhooks.worker_pass()

    endpoint.refresh_from_db()
    assert endpoint.active is False
    assert endpoint.disabled_reason == "2 deliveries in a row failed every attempt (last error: answered 500)"
    assert endpoint.disabled_at is not None
    make_session(host)
    assert webhooks.worker_pass().created == 0  # nothing queued while disabled


def test_a_success_clears_an_endpoints_failures(receiver, settings, host, make_session):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_DISABLE_AFTER_DEAD = 2
    endpoint = register(receiver.url())
    for answer in (500, 200, 500):
        make_session(host)
        receiver.answer(answer)
        webhooks.worker_pass()

    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_dead) == (True, 1)  # 500, 200, 500: never two in a row


def test_an_endpoint_failing_too_long_is_disabled_and_staff_can_enable_it(
    receiver, settings, clock, host, make_session
):
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 3600
    receiver.default = 500
    endpoint = register(receiver.url())
    make_session(host)
    webhooks.worker_pass()
    clock.advance(seconds=3600)

    webhooks.worker_pass()

    endpoint.refresh_from_db()
    assert endpoint.active is False
    assert endpoint.disabled_reason.startswith("failing without a success since ")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)  # waits, kept
    clock.advance(hours=2)
    assert webhooks.worker_pass().sent == 0  # a disabled endpoint gets nothing

    receiver.default = 200
    webhooks.endpoint_enable(endpoint_id=endpoint.pk)
    webhooks.worker_pass()

    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.disabled_reason, endpoint.consecutive_failures) == (True, "", 0)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_a_replay_sends_a_delivery_again_from_a_first_attempt(receiver, settings, host, make_session):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    register(receiver.url())
    make_session(host)
    receiver.answer(500)
    webhooks.worker_pass()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD

    replayed = webhooks.delivery_replay(delivery_id=delivery.pk)
    assert (replayed.status, replayed.attempts, replayed.finished_at) == (DeliveryStatus.PENDING, 0, None)
    webhooks.worker_pass()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 1)
    assert delivery.attempt_rows.count() == 2  # the first attempt stays on record
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


def test_a_test_event_is_sent_at_once(receiver):
    endpoint = register(receiver.url())

    attempt = webhooks.endpoint_send_test(endpoint_id=endpoint.pk)

    assert (attempt.status_code, attempt.error) == (200, "")
    [request] = receiver.received
    body = json.loads(request.body)
    assert (body["type"], body["id"], body["data"]) == ("webhook.test", None, {"test": True})
    assert verify(endpoint.secret, request.headers["X-Session-Signature"], request.body)
    assert webhooks.worker_pass().sent == 0  # not sent twice


def test_registering_refuses_unknown_event_types_and_urls_it_may_not_reach(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(InvalidInput) as refused:
        register("http://10.0.0.8/hook", "member.joined", "session.exploded")

    assert refused.value.code == "invalid_webhook_endpoint"
    assert {e["field"] for e in refused.value.errors or []} == {"url", "event_types"}
    assert WebhookEndpoint.objects.count() == 0


def test_a_new_endpoint_gets_a_secret_of_its_own():
    first = register("https://hooks.example.com/a")
    second = register("https://hooks.example.com/b")

    assert first.secret.startswith("whsec_")
    assert len(first.secret) > 40
    assert first.secret != second.secret


def test_an_endpoint_deleted_during_a_request_does_not_stop_the_worker(monkeypatch, host, make_session):
    endpoint = register("https://hooks.example.com/x")
    make_session(host)
    make_session(host)

    def post_while_staff_delete_the_endpoint(url, body, headers):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
        return outbound.Answer(status=200, excerpt="", location="", duration_ms=5)

    monkeypatch.setattr(outbound, "post", post_while_staff_delete_the_endpoint)

    done = webhooks.worker_pass()

    assert (done.created, done.sent) == (2, 0)  # nothing left to record, nothing else to send
    assert WebhookDelivery.objects.count() == WebhookAttempt.objects.count() == 0
