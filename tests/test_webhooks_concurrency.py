"""Several delivery workers at once, with real connections on PostgreSQL: each event becomes
one delivery per endpoint, and each delivery is sent once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from sessions_app.event_models import SessionEvent
from sessions_app.services import webhooks
from sessions_app.services.sessions import session_create
from sessions_app.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .factories import PlayerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def at_once(calls: list[Callable[[], object]]) -> None:
    """Run the calls at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            call()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == []


def test_workers_running_at_once_create_and_send_each_delivery_once(receiver):
    for path in ("/a", "/b"):
        webhooks.endpoint_register(endpoint=WebhookEndpoint(url=receiver.url(path)))
    for _ in range(40):
        session_create(actor=PlayerFactory(), values={})
    event_ids = list(SessionEvent.objects.order_by("id").values_list("id", flat=True))
    assert len(event_ids) == 40

    # Small scan batches, so that the workers take turns on the cursor many times.
    at_once([lambda: webhooks.worker_pass(batch_size=7) for _ in range(4)])

    received = Counter((r.path, json.loads(r.body)["id"]) for r in receiver.received)
    assert received == Counter({(path, event_id): 1 for path in ("/a", "/b") for event_id in event_ids})
    assert WebhookDelivery.objects.count() == 80
    assert WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).count() == 0
    assert WebhookAttempt.objects.count() == 80
