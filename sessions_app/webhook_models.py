"""Webhooks' models (issue 14): the endpoints staff register, one delivery per event and
endpoint, every attempt of a delivery, and the delivery worker's place in the event log.
Imported by `sessions_app.models`; written only through `services.webhooks`."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions_project.jsonfield import JSONField
from sessions_project.outbound import MAX_URL_LENGTH, validate_webhook_url

from .event_models import EventType


def new_webhook_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe text (`whsec_` says what it is)."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A URL that gets the session events it wants, signed with its own secret."""

    url = models.CharField("URL", max_length=MAX_URL_LENGTH, validators=[validate_webhook_url])
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(
        max_length=100,
        default=new_webhook_secret,
        help_text="Signs every delivery (X-Session-Signature); give it to the receiver.",
    )
    event_types = JSONField(
        default=list,
        blank=True,
        help_text="The event types sent to this endpoint; none chosen: every type, including types added later.",
    )
    active = models.BooleanField(default=True, help_text="Only active endpoints get deliveries.")
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    consecutive_dead = models.PositiveIntegerField(
        default=0, help_text="Deliveries given up on since the last success."
    )
    failing_since = models.DateTimeField(null=True, blank=True, help_text="The first failure since the last success.")
    after_event_id = models.BigIntegerField(
        default=0, help_text="Events up to this id (the latest when it was registered) are not sent to it."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook endpoint"
        verbose_name_plural = "webhook endpoints"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        types = self.event_types
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ValidationError({"event_types": "A list of event types."})
        unknown = sorted(set(types) - set(EventType.values))
        if unknown:
            raise ValidationError({"event_types": f"Not event types: {', '.join(unknown)}."})

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"  # no attempt yet (or replayed)
    FAILED = "failed", "failed"  # an attempt failed, another is scheduled
    SUCCEEDED = "succeeded", "succeeded"
    DEAD = "dead", "dead"  # every attempt failed: given up (staff can replay it)


# Deliveries the worker still has to send (the partial index below holds only these).
DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact body sent, and where its attempts stand."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # Not a foreign key: the event log is purged by age, the record of what was sent stays.
    event_id = models.BigIntegerField("event id", null=True, blank=True, help_text="Empty: a test delivery.")
    event_type = models.CharField(max_length=32)
    payload = models.TextField(help_text="The JSON body, exactly as sent and signed.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it succeeded or was given up on.")

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        constraints = [
            # The scan's safety net: one delivery per event and endpoint, however many workers.
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in DeliveryStatus]), name="webhook_delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status__in=[s.value for s in DUE_STATUSES]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.event_id} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what came back (or why nothing did), and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no answer.")
    duration_ms = models.PositiveIntegerField(default=0)
    answer_excerpt = models.TextField(blank=True, help_text="The answer's first kilobyte.")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "webhook attempt"
        verbose_name_plural = "webhook attempts"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}"


class WebhookCursor(models.Model):
    """The last event id the delivery workers turned into deliveries: one row, locked by the
    worker scanning, so that several workers never create a delivery twice."""

    name = models.CharField(max_length=32, primary_key=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook cursor"
        verbose_name_plural = "webhook cursors"

    def __str__(self) -> str:
        return f"{self.name} at event {self.last_event_id}"
