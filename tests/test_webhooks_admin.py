"""Webhooks in admin and the deliver_webhooks command: staff register endpoints with the event
types they want, see why one was disabled, send a test, enable it, see every attempt of a
delivery and replay it; the worker runs once or until SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.event_models import EventType, SessionEvent
from sessions_app.services import webhooks
from sessions_app.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/sessions_app/webhookendpoint/"
DELIVERIES = "/admin/sessions_app/webhookdelivery/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_staff_register_an_endpoint_with_the_event_types_it_wants(admin_client, receiver, host, make_session):
    make_session(host)

    response = admin_client.post(
        f"{ENDPOINTS}add/",
        {
            "url": receiver.url(),
            "description": "lobby bot",
            "event_types": ["member.joined", "member.left"],
            "active": "on",
        },
        follow=True,
    )

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["member.joined", "member.left"]
    assert endpoint.active is True
    assert endpoint.after_event_id == SessionEvent.objects.latest("id").pk  # registered through the service
    assert any("signing secret" in m for m in messages_of(response))
    page = admin_client.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
    assert endpoint.secret in page  # readable by staff
    assert f'value="{EventType.MEMBER_JOINED}"' in page


def test_the_add_form_refuses_a_private_address(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    response = admin_client.post(f"{ENDPOINTS}add/", {"url": "http://127.0.0.1:8000/hook"})

    assert response.status_code == 200  # the form again, with the error
    assert "loopback address" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_staff_see_why_an_endpoint_was_disabled_then_test_and_enable_it(admin_client, receiver):
    endpoint = webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    webhooks.endpoint_disable(endpoint_id=endpoint.pk, reason="5 deliveries in a row failed every attempt")

    listed = admin_client.get(ENDPOINTS).content.decode()
    assert "5 deliveries in a row failed every attempt" in listed

    tested = admin_client.post(ENDPOINTS, {"action": "send_test", "_selected_action": [endpoint.pk]}, follow=True)
    assert any("answered 200" in m for m in messages_of(tested))
    assert receiver.received[0].headers["X-Session-Event"] == "webhook.test"

    enabled = admin_client.post(ENDPOINTS, {"action": "enable", "_selected_action": [endpoint.pk]}, follow=True)
    assert "1 endpoint enabled." in messages_of(enabled)
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.disabled_reason, endpoint.disabled_at) == (True, "", None)


def test_a_delivery_page_shows_its_attempts_and_staff_can_replay_it(
    admin_client, receiver, settings, host, make_session
):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    receiver.answer(500)
    webhooks.worker_pass()
    delivery = WebhookDelivery.objects.get()

    page = admin_client.get(f"{DELIVERIES}{delivery.pk}/change/").content.decode()
    assert "answered 500" in page
    assert "answer 500 " in page  # the answer's excerpt

    assert 'value="replay"' in admin_client.get(DELIVERIES).content.decode()
    replayed = admin_client.post(DELIVERIES, {"action": "replay", "_selected_action": [delivery.pk]}, follow=True)

    assert "1 delivery queued to be sent again." in messages_of(replayed)
    webhooks.worker_pass()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_endpoint_deliveries_and_attempts_lists_cost_the_same_for_few_and_many_rows(
    admin_client, receiver, host, make_session
):
    endpoints = [webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url(f"/{i}"))) for i in range(3)]
    make_session(host)
    webhooks.worker_pass()
    counts = {}
    for url in (ENDPOINTS, DELIVERIES, "/admin/sessions_app/webhookattempt/", "/admin/sessions_app/webhookcursor/"):
        with CaptureQueriesContext(connection) as few:
            assert admin_client.get(url).status_code == 200
        counts[url] = len(few)
    for _ in range(5):
        make_session(host)
    endpoints.append(webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url("/late"))))
    make_session(host)
    webhooks.worker_pass()
    assert WebhookAttempt.objects.count() == 3 * 7 + 1

    for url, before in counts.items():
        with CaptureQueriesContext(connection) as many:
            assert admin_client.get(url).status_code == 200
        assert len(many) == before, url


def test_deliver_webhooks_once_sends_what_is_due(receiver, host, make_session):
    webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    out = StringIO()

    call_command("deliver_webhooks", "--once", stdout=out)

    assert out.getvalue() == "1 delivery(ies) created, 1 sent, 1 succeeded\n"
    assert len(receiver.received) == 1


def test_deliver_webhooks_runs_until_sigterm(receiver, host, make_session):
    webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    out = StringIO()
    # Sent once the worker has delivered (so the loop is waiting for more): then it stops cleanly.
    stopper = threading.Thread(target=lambda: (receiver_got_one(receiver), os.kill(os.getpid(), signal.SIGTERM)))
    stopper.start()
    previous = signal.getsignal(signal.SIGTERM)

    call_command("deliver_webhooks", "--interval", "1", stdout=out)

    stopper.join()
    assert out.getvalue().splitlines() == ["1 delivery(ies) created, 1 sent, 1 succeeded", "Stopped."]
    assert signal.getsignal(signal.SIGTERM) == previous  # put back


def receiver_got_one(receiver) -> None:
    for _ in range(600):
        if receiver.received:
            return
        threading.Event().wait(0.05)


def test_deleting_an_endpoint_takes_its_deliveries_and_attempts(admin_client, receiver, host, make_session):
    endpoint = webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    webhooks.worker_pass()

    response = admin_client.post(f"{ENDPOINTS}{endpoint.pk}/delete/", {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert WebhookEndpoint.objects.count() == 0
    assert WebhookDelivery.objects.count() == WebhookAttempt.objects.count() == 0


def test_staff_who_may_view_endpoints_read_deliveries_and_attempts(client, staff, receiver, host, make_session):
    staff.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client.force_login(staff)
    webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    receiver.answer(500)
    webhooks.worker_pass()
    delivery = WebhookDelivery.objects.get()

    page = client.get(f"{DELIVERIES}{delivery.pk}/change/")

    assert page.status_code == 200
    assert "answer 500 " in page.content.decode()  # the attempts inline
    assert client.get("/admin/sessions_app/webhookattempt/").status_code == 200
    replay = client.post(DELIVERIES, {"action": "replay", "_selected_action": [delivery.pk]}, follow=True)
    assert 'value="replay"' not in client.get(DELIVERIES).content.decode()  # it needs the change permission
    assert replay.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_purge_sessions_deletes_finished_deliveries_past_the_retention(receiver, settings, clock, host, make_session):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url()))
    make_session(host)
    make_session(host)
    receiver.answer(200, 500)
    webhooks.worker_pass()  # one succeeded, one dead
    clock.advance(days=29)
    make_session(host)
    receiver.default = 200
    webhooks.worker_pass()  # a recent one
    clock.advance(days=2)
    WebhookDelivery.objects.create(  # still to be sent: kept however old
        endpoint=WebhookEndpoint.objects.get(),
        event_type="member.joined",
        payload="{}",
        created_at=clock.now - timedelta(days=400),
    )

    dry = StringIO()
    call_command("purge_sessions", "--closed-before", "2000-01-01", "--dry-run", stdout=dry)
    assert "Would delete 2 webhook delivery(ies) finished more than 30 day(s) ago." in dry.getvalue()
    out = StringIO()
    call_command("purge_sessions", "--closed-before", "2000-01-01", stdout=out)

    assert "Deleted 2 webhook delivery(ies) finished more than 30 day(s) ago." in out.getvalue()
    assert WebhookDelivery.objects.count() == 2  # the recent one, and the one still to send
    assert WebhookAttempt.objects.count() == 1


def test_deliver_webhooks_logs_a_failed_pass_and_carries_on(monkeypatch, caplog):
    passes = []

    def failing_then_stopped(**kwargs):
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("a bug")
        os.kill(os.getpid(), signal.SIGTERM)  # the second pass ran: stop
        return webhooks.WorkerPass()

    monkeypatch.setattr(webhooks, "worker_pass", failing_then_stopped)
    out = StringIO()

    call_command("deliver_webhooks", "--interval", "1", stdout=out)

    assert len(passes) == 2
    assert "webhook worker pass failed" in caplog.text
    assert out.getvalue() == "Stopped.\n"
