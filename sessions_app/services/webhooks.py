"""Webhooks: session events POSTed to the endpoints staff register, signed, at least once.

How an event becomes a request (README "Webhooks"):
1. `events_scan`: a worker locks the one cursor row (`WebhookCursor`, SELECT ... FOR UPDATE),
   reads the events after it in batches and creates a pending delivery for each active
   endpoint that wants the event's type (and was registered before it), then moves the
   cursor, all in one transaction. Event ids are handed out in commit order (migration
   0009_event_commit_order), so walking the log by id never skips an event; the lock makes
   several workers take turns, and a unique (endpoint, event) pair is the safety net.
2. `delivery_claim_next`: a worker takes one due delivery with SELECT ... FOR UPDATE SKIP
   LOCKED and leases it (moves its next attempt past the time a request can take) in a short
   transaction: no transaction stays open across the HTTP request, other workers skip it,
   and a worker that dies mid-request leaves it due again once the lease runs out.
3. `delivery_send`: one signed POST (`sessions_project.outbound`: short timeouts, no
   redirects, no private addresses), then `_record_attempt`: success, or a retry after
   exponential backoff, or, after WEBHOOK_MAX_ATTEMPTS, dead; an endpoint with
   WEBHOOK_DISABLE_AFTER_DEAD dead deliveries in a row, or failing for
   WEBHOOK_DISABLE_AFTER_SECONDS without a success, is disabled with the reason staff see.

The body is the event exactly as the events endpoints render it (their `event_document`, the
API's renderer), stored with the delivery, so a retry or a replay sends the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from sessions_project import metrics, outbound
from sessions_project.errors import InvalidInput, NotFound
from sessions_project.renderers import OrjsonRenderer
from sessions_project.times import iso

from ..event_models import SessionEvent

# The event's document, as the events endpoints show it.
from ..feeds import EVENT_COLUMNS, event_document
from ..webhook_models import (
    DUE_STATUSES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Session-Signature"
USER_AGENT = "session-service-webhooks/1"
TEST_EVENT_TYPE = "webhook.test"
CURSOR_NAME = "events"
SCAN_BATCH = 500
_RENDERER = OrjsonRenderer()


def body_of(document: dict[str, Any]) -> str:
    """A document as the API renders it (the same bytes a GET of the events shows)."""
    return _RENDERER.render(document).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Session-Signature value: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base * 2^(attempts-1), at most the cap."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    seconds = min(settings.WEBHOOK_RETRY_MAX_SECONDS, base * 2 ** min(attempts - 1, 30))
    return timedelta(seconds=seconds)


def lease() -> timedelta:
    """How long a claimed delivery is left to its worker: longer than a request can take."""
    return timedelta(seconds=2 * (settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_READ_TIMEOUT) + 60)


def count_outcome(outcome: str) -> None:
    """The one place every attempt's outcome is known: "succeeded", "failed" (another attempt
    is scheduled) or "dead" (given up); counted for /metrics."""
    metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


# --- endpoints: register, disable, enable, test ------------------------------------------------


def endpoint_register(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Validate and save a new endpoint; it gets the events committed after this (none before)."""
    if endpoint.pk is not None:
        raise InvalidInput("This endpoint is registered already.", code="webhook_endpoint_exists")
    if isinstance(endpoint.event_types, list):
        endpoint.event_types = sorted(set(endpoint.event_types))
    try:
        endpoint.full_clean()
    except ValidationError as exc:
        raise InvalidInput(
            "The endpoint is invalid.",
            code="invalid_webhook_endpoint",
            errors=[
                {"field": field, "code": error.code or "invalid", "message": " ".join(error.messages)}
                for field, errors in exc.error_dict.items()
                for error in errors
            ],
        ) from None
    endpoint.after_event_id = SessionEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
    endpoint.save()
    return endpoint


def _locked_endpoint(endpoint_id: int) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found") from None


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    endpoint.active = False
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now


def endpoint_disable(*, endpoint_id: int, reason: str) -> WebhookEndpoint:
    """Stop sending to an endpoint, saying why. Its unsent deliveries wait; events written
    while it is disabled are not queued for it (replay them if it needs them)."""
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint_id)
        _disable(endpoint, reason, timezone.now())
        endpoint.save(update_fields=["active", "disabled_reason", "disabled_at"])
    return endpoint


def endpoint_enable(*, endpoint_id: int) -> WebhookEndpoint:
    """Send to an endpoint again, with a clean record: its waiting deliveries go out as they
    fall due (at once for those already due)."""
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint_id)
        endpoint.active = True
        endpoint.disabled_reason = ""
        endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
        endpoint.consecutive_dead = 0
        endpoint.failing_since = None
        endpoint.save(
            update_fields=[
                "active",
                "disabled_reason",
                "disabled_at",
                "consecutive_failures",
                "consecutive_dead",
                "failing_since",
            ]
        )
    return endpoint


def endpoint_send_test(*, endpoint_id: int) -> WebhookAttempt:
    """Send a `webhook.test` event to an endpoint now (active or not) and return the attempt;
    a failed test is retried like any delivery while the endpoint is active."""
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")
    document = {
        "id": None,
        "type": TEST_EVENT_TYPE,
        "sessionUid": None,
        "version": None,
        "actorUid": None,
        "at": iso(now),
        "data": {"test": True},
    }
    # Created leased, as a claim leaves it: no worker sends it while this does.
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=None,
        event_type=TEST_EVENT_TYPE,
        payload=body_of(document),
        next_attempt_at=now + lease(),
    )
    attempt = delivery_send(delivery_id=delivery.pk)
    if attempt is None:
        raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")
    return attempt


# --- deliveries: replay, scan, claim, send ------------------------------------------------------


def delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again, the same body, from its first attempt (its past attempts stay)."""
    with transaction.atomic():
        try:
            delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        except WebhookDelivery.DoesNotExist:
            raise NotFound("No such webhook delivery.", code="webhook_delivery_not_found") from None
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.finished_at = None
        delivery.last_error = ""
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at", "last_error"])
    return delivery


def _scan_batch(batch_size: int) -> tuple[int, bool]:
    """One batch of events after the cursor into deliveries; (deliveries made, more to read)."""
    WebhookCursor.objects.get_or_create(name=CURSOR_NAME)
    with transaction.atomic():
        cursor = WebhookCursor.objects.select_for_update().get(name=CURSOR_NAME)
        endpoints = list(WebhookEndpoint.objects.filter(active=True).order_by("id"))
        if not endpoints:
            # Nobody to send to: skip what is there without reading it.
            latest = SessionEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
            if latest > cursor.last_event_id:
                cursor.last_event_id = latest
                cursor.updated_at = timezone.now()
                cursor.save(update_fields=["last_event_id", "updated_at"])
            return 0, False
        rows = list(
            SessionEvent.objects.filter(id__gt=cursor.last_event_id).order_by("id").values(*EVENT_COLUMNS)[:batch_size]
        )
        if not rows:
            return 0, False
        now = timezone.now()
        deliveries = [
            WebhookDelivery(
                endpoint=endpoint,
                event_id=row["id"],
                event_type=row["type"],
                payload=body_of(event_document(row)),
                next_attempt_at=now,
                created_at=now,
            )
            for row in rows
            for endpoint in endpoints
            if row["id"] > endpoint.after_event_id and endpoint.wants(row["type"])
        ]
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        cursor.last_event_id = rows[-1]["id"]
        cursor.updated_at = now
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return len(deliveries), len(rows) == batch_size


def events_scan(*, batch_size: int = SCAN_BATCH) -> int:
    """Turn every event written since the last scan into deliveries; returns how many."""
    made = 0
    more = True
    while more:
        batch, more = _scan_batch(batch_size)
        made += batch
    return made


def delivery_claim_next() -> int | None:
    """The id of one due delivery of an active endpoint, leased to the caller, or None."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            WebhookDelivery.objects.filter(status__in=DUE_STATUSES, next_attempt_at__lte=now, endpoint__active=True)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)
            .first()
        )
        if claimed is not None:
            WebhookDelivery.objects.filter(pk=claimed).update(next_attempt_at=now + lease())
    return claimed


def delivery_send(*, delivery_id: int) -> WebhookAttempt | None:
    """POST a delivery (claimed by the caller) once, signed, and record how it went; None if
    it (or its endpoint) was deleted meanwhile."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    body = delivery.payload.encode()
    timestamp = int(timezone.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
        "X-Session-Event": delivery.event_type,
        "X-Session-Delivery": str(delivery.pk),
    }
    status_code: int | None = None
    excerpt = error = ""
    try:
        answer = outbound.post(endpoint.url, body, headers)
    except outbound.RequestFailed as exc:
        error, duration_ms = str(exc), exc.duration_ms
    else:
        status_code, excerpt, duration_ms = answer.status, answer.excerpt, answer.duration_ms
        if 300 <= answer.status < 400:
            error = f"answered {answer.status}: redirects are not followed (Location: {answer.location or 'none'})"
        elif not 200 <= answer.status < 300:
            error = f"answered {answer.status}"
    return _record_attempt(
        delivery_id=delivery.pk,
        endpoint_id=endpoint.pk,
        status_code=status_code,
        duration_ms=duration_ms,
        excerpt=excerpt,
        error=error,
    )


def _record_attempt(
    *, delivery_id: int, endpoint_id: int, status_code: int | None, duration_ms: int, excerpt: str, error: str
) -> WebhookAttempt | None:
    """The attempt, the delivery's new state and the endpoint's record, in one transaction
    (endpoint row first, then the delivery's)."""
    with transaction.atomic():
        # NO KEY: deliveries being created for it (their foreign key) need not wait.
        endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if endpoint is None or delivery is None:
            return None  # staff deleted the endpoint during the request: nothing to record
        now = timezone.now()
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=status_code,
            duration_ms=duration_ms,
            answer_excerpt=excerpt,
            error=error[:500],
        )
        delivery.attempts += 1
        delivery.last_error = error[:500]
        if not error:
            outcome = DeliveryStatus.SUCCEEDED
            delivery.next_attempt_at = None
            delivery.finished_at = now
            endpoint.consecutive_failures = endpoint.consecutive_dead = 0
            endpoint.failing_since = None
        else:
            endpoint.consecutive_failures += 1
            endpoint.failing_since = endpoint.failing_since or now
            if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
                outcome = DeliveryStatus.DEAD
                delivery.next_attempt_at = None
                delivery.finished_at = now
                endpoint.consecutive_dead += 1
            else:
                outcome = DeliveryStatus.FAILED
                delivery.next_attempt_at = now + backoff(delivery.attempts)
            reason = _disable_reason(endpoint, now, error)
            if endpoint.active and reason:
                _disable(endpoint, reason, now)
                logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
        delivery.status = outcome
        delivery.save(update_fields=["attempts", "last_error", "status", "next_attempt_at", "finished_at"])
        endpoint.save(
            update_fields=[
                "consecutive_failures",
                "consecutive_dead",
                "failing_since",
                "active",
                "disabled_reason",
                "disabled_at",
            ]
        )
    logger.info(
        "webhook delivery %s (%s) to endpoint %s: %s%s",
        delivery.pk,
        delivery.event_type,
        endpoint.pk,
        outcome.value,
        f" ({error})" if error else "",
    )
    count_outcome(outcome.value)
    return attempt


def _disable_reason(endpoint: WebhookEndpoint, now: datetime, error: str) -> str:
    """Why a failing endpoint is to be disabled now, or "" while it is not."""
    if endpoint.consecutive_dead >= settings.WEBHOOK_DISABLE_AFTER_DEAD:
        return f"{endpoint.consecutive_dead} deliveries in a row failed every attempt (last error: {error})"
    since = endpoint.failing_since
    if since is not None and now - since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS):
        return f"failing without a success since {iso(since)} (last error: {error})"
    return ""


def deliveries_purge(*, now: datetime | None = None, dry_run: bool = False, batch_size: int = 5000) -> int:
    """Delete the deliveries that succeeded or died more than EVENT_RETENTION_DAYS ago, with
    their attempts (the events they carried are gone by then too); returns how many were (or
    would be) deleted. Deliveries still to be sent are kept however old."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    old = WebhookDelivery.objects.filter(
        status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD], finished_at__lt=cutoff
    )
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        pks = list(old.order_by("id").values_list("id", flat=True)[:batch_size])
        if pks:
            WebhookAttempt.objects.filter(delivery_id__in=pks).delete()
            deleted += WebhookDelivery.objects.filter(pk__in=pks).delete()[0]
        if len(pks) < batch_size:
            return deleted


# --- the worker ---------------------------------------------------------------------------------


@dataclass
class WorkerPass:
    """What one pass of a delivery worker did."""

    created: int = 0
    sent: int = 0
    succeeded: int = 0


def worker_pass(*, should_stop: Callable[[], bool] = lambda: False, batch_size: int = SCAN_BATCH) -> WorkerPass:
    """Scan the log, then send every delivery due now, one at a time, until none is left or
    `should_stop()` (checked between requests). Safe with several workers at once."""
    done = WorkerPass(created=events_scan(batch_size=batch_size))
    while not should_stop():
        delivery_id = delivery_claim_next()
        if delivery_id is None:
            break
        attempt = delivery_send(delivery_id=delivery_id)
        if attempt is None:
            continue
        done.sent += 1
        done.succeeded += not attempt.error
    return done
