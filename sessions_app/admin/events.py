"""The session event log in admin: the audit trail of what happened to sessions, whoever did
it (API, admin, commands, time).

Events are written only by the services (`services.events`): here they are read, never added,
changed or deleted (purge_sessions deletes them past EVENT_RETENTION_DAYS). A session's page
shows its latest events (`EventsMixin`) and links to all of them in this list.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from sessions_project.admin_mixins import UidSearchMixin
from sessions_project.times import iso

from ..event_models import SessionEvent
from ..models import GameSession
from .mixins import ReadOnlyMixin, TextInputFilter

# Events a session's page shows, newest first; the rest are in the linked list.
LATEST_EVENTS = 50


class SessionUidFilter(TextInputFilter):
    title = "session UID"
    parameter_name = "session_uid"
    field_name = "session_uid"

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(session_uid=uuid.UUID(value.strip()))
        except ValueError:
            return queryset.none()


def events_list_url(session_uid: Any) -> str:
    return f"{reverse('admin:sessions_app_sessionevent_changelist')}?session_uid={session_uid}"


def _data(event: SessionEvent) -> str:
    return json.dumps(event.data, sort_keys=True, ensure_ascii=False)


@admin.register(SessionEvent)
class SessionEventAdmin(UidSearchMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "type", "session_link", "version", "actor_uid", "player_uid", "at", "data_text")
    list_filter = ("type", SessionUidFilter, "restricted", "at")
    search_fields = ("type",)
    search_help_text = "A session's, actor's or player's UID, or an event type."
    list_select_related = ()
    show_full_result_count = False
    ordering = ("-id",)
    date_hierarchy = "at"
    readonly_fields = (
        "id",
        "type",
        "session_link",
        "version",
        "actor_uid",
        "player_uid",
        "restricted",
        "at",
        "data_text",
    )
    fields = readonly_fields

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session_uid=value) | Q(actor_uid=value) | Q(player_uid=value)

    def has_view_permission(self, request, obj=None):
        # Whoever may view sessions may read what happened to them.
        return super().has_view_permission(request, obj) or request.user.has_perm("sessions_app.view_gamesession")

    @admin.display(description="session", ordering="session_uid")
    def session_link(self, obj: SessionEvent) -> str:
        # The session may be gone (events outlive it): link to its events, which always exist.
        return format_html('<a href="{}"><code>{}</code></a>', events_list_url(obj.session_uid), obj.session_uid)

    @admin.display(description="data")
    def data_text(self, obj: SessionEvent) -> str:
        return format_html("<code>{}</code>", _data(obj))


class EventsMixin:
    """For the session admin: a read-only field showing the session's latest events."""

    @admin.display(description="events (newest first)")
    def recent_events(self, obj: GameSession) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "—")
        events = list(SessionEvent.objects.filter(session_uid=obj.uid).order_by("-id")[: LATEST_EVENTS + 1])
        more = len(events) > LATEST_EVENTS
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (e.pk, iso(e.at), e.type, "" if e.version is None else e.version, e.actor_uid or "system", _data(e))
                for e in events[:LATEST_EVENTS]
            ),
        )
        link = format_html(
            '<a href="{}">{}</a>',
            events_list_url(obj.uid),
            f"All events of this session (showing the latest {LATEST_EVENTS})" if more else "In the event list",
        )
        if not events:
            return format_html("No events. {}", link)
        return format_html(
            "<table><thead><tr><th>id</th><th>at</th><th>type</th><th>version</th><th>actor</th><th>data</th>"
            "</tr></thead><tbody>{}</tbody></table><p>{}</p>",
            rows,
            link,
        )
