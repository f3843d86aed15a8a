"""Webhooks in admin: staff register endpoints and see every delivery with its attempts.

An endpoint is added here (validated and saved by `webhooks.endpoint_register`); afterwards
its URL, description and event types may change, while turning it off and on goes through the
actions (`endpoint_disable`, `endpoint_enable`), so a disabled endpoint always says why.
Deliveries and attempts are records: read-only, but for the replay action.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from sessions_project.admin_mixins import NulSafeMixin
from sessions_project.errors import DomainError

from ..event_models import EventType
from ..services import webhooks
from ..webhook_models import WebhookAttempt, WebhookCursor, WebhookDelivery, WebhookEndpoint
from .mixins import ReadOnlyMixin, ServiceActionMixin, admin_actor, plural


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The event types sent to this endpoint; none chosen: every type, including types added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "active")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceActionMixin, NulSafeMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "active", "types_text", "consecutive_failures", "disabled_reason", "disabled_at")
    list_filter = ("active",)
    search_fields = ("url", "description")
    list_select_related = ()
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ("send_test", "enable", "disable")
    readonly_fields = (
        "secret",
        "disabled_reason",
        "disabled_at",
        "consecutive_failures",
        "consecutive_dead",
        "failing_since",
        "after_event_id",
        "created_at",
        "deliveries_link",
    )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("url", "description", "event_types", "active")
        return ("url", "description", "event_types", "active", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        # On and off through the actions, once it exists (a disabled endpoint keeps its reason).
        return self.readonly_fields if obj is None else ("active", *self.readonly_fields)

    def get_deleted_objects(self, objs, request):
        # Its deliveries and attempts go with it: they are records, never deleted one by one,
        # so their admins' lack of a delete permission must not block deleting the endpoint.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        records = {str(m._meta.verbose_name) for m in (WebhookDelivery, WebhookAttempt)}
        return deleted, model_count, perms_needed - records, protected

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
        else:
            webhooks.endpoint_register(endpoint=obj)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"Its signing secret is on its page ({obj.secret[:10]}…): give it to the receiver to check signatures.",
            messages.INFO,
        )
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="event types")
    def types_text(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        url = f"{reverse('admin:sessions_app_webhookdelivery_changelist')}?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">Deliveries to this endpoint</a>', url)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[WebhookEndpoint],
        call: Callable[[WebhookEndpoint], WebhookEndpoint],
        done: str,
    ) -> None:
        admin_actor(request)  # staff only
        results, refusals = self.apply_each(request, queryset, call, log=lambda e, _: (e, done))
        if results:
            self.message_user(request, f"{plural(len(results), 'endpoint')} {done}.", messages.SUCCESS)
        self.report_refusals(request, refusals, noun="endpoint")

    @admin.action(description="Send a test event to the selected endpoints now", permissions=["change"])
    def send_test(self, request, queryset):
        admin_actor(request)
        for endpoint in list(queryset):
            try:
                attempt = webhooks.endpoint_send_test(endpoint_id=endpoint.pk)
            except DomainError as exc:  # deleted meanwhile
                self.message_user(request, f"{endpoint.url}: {exc.detail}", messages.ERROR)
                continue
            if attempt.error:
                self.message_user(request, f"{endpoint.url}: {attempt.error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{endpoint.url}: answered {attempt.status_code} in {attempt.duration_ms} ms.",
                    messages.SUCCESS,
                )

    @admin.action(description="Enable the selected endpoints (clears their failures)", permissions=["change"])
    def enable(self, request, queryset):
        self._each(request, queryset, lambda e: webhooks.endpoint_enable(endpoint_id=e.pk), "enabled")

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable(self, request, queryset):
        reason = f"disabled by {request.user}"
        self._each(request, queryset, lambda e: webhooks.endpoint_disable(endpoint_id=e.pk, reason=reason), "disabled")


def may_view_webhooks(request: HttpRequest) -> bool:
    """Whoever may view endpoints may read their deliveries and attempts."""
    return request.user.has_perm("sessions_app.view_webhookendpoint")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "status_code", "duration_ms", "error", "answer_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or may_view_webhooks(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, ServiceActionMixin, NulSafeMixin, admin.ModelAdmin):
    list_display = ("id", "endpoint", "event_type", "event_id", "status", "attempts", "next_attempt_at", "last_error")
    list_filter = ("status", "event_type", "endpoint")
    search_fields = ("endpoint__url", "event_type")
    list_select_related = ("endpoint",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    ordering = ("-id",)
    inlines = (WebhookAttemptInline,)
    actions = ("replay",)
    readonly_fields = (
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "finished_at",
        "payload",
    )
    fields = readonly_fields

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or may_view_webhooks(request)

    def has_replay_permission(self, request):
        return request.user.has_perm("sessions_app.change_webhookendpoint")

    @admin.action(
        description="Replay the selected deliveries (send again, from the first attempt)", permissions=["replay"]
    )
    def replay(self, request, queryset):
        admin_actor(request)
        results, refusals = self.apply_each(request, queryset, lambda d: webhooks.delivery_replay(delivery_id=d.pk))
        if results:
            self.message_user(request, f"{plural(len(results), 'delivery')} queued to be sent again.", messages.SUCCESS)
        inactive = sum(1 for d in results if not d.endpoint.active)
        if inactive:
            self.message_user(
                request, f"{plural(inactive, 'delivery')} wait(s) for a disabled endpoint.", messages.WARNING
            )
        self.report_refusals(request, refusals, noun="delivery")


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyMixin, NulSafeMixin, admin.ModelAdmin):
    list_display = ("id", "delivery", "at", "status_code", "duration_ms", "error")
    list_filter = ("status_code",)
    search_fields = ("delivery__endpoint__url", "error")
    list_select_related = ("delivery",)
    show_full_result_count = False
    date_hierarchy = "at"
    ordering = ("-id",)
    readonly_fields = ("delivery", "at", "status_code", "duration_ms", "error", "answer_excerpt")
    fields = readonly_fields

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or may_view_webhooks(request)


@admin.register(WebhookCursor)
class WebhookCursorAdmin(ReadOnlyMixin, NulSafeMixin, admin.ModelAdmin):
    list_display = ("name", "last_event_id", "updated_at")
    list_select_related = ()
    show_full_result_count = False
    date_hierarchy = "updated_at"
    readonly_fields = ("name", "last_event_id", "updated_at")
    fields = readonly_fields
