"""Several delivery workers at once, with real connections on PostgreSQL: each event becomes
one delivery per endpoint, and each delivery is sent once."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sessions_app.event_models import SessionEvent
from sessions_app.services import webhooks
from sessions_app.services.sessions import session_create
from sessions_app.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .factories import PlayerFactory
from .threads import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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
