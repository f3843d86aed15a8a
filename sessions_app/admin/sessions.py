"""The session admin: find a session among many, see who is in it, close it, remove a
player, export the list as CSV.

Admin writes nothing itself. Saving a session calls `sessions.session_create` /
`sessions.session_update` (through `SessionAdminForm`), and the actions call
`lifecycle.session_close` and `membership.session_kick`, as the API does: version bumps,
capacity, host hand-over and team resizing are written once. The services check API
permissions on their `actor`; admin passes an `AdminActor`, which holds `session:*` while the
staff member may change sessions here. A refusal (`DomainError`) becomes an admin message.

Members, teams, invites, reservations and the latest events are read-only (admin/membership.py, events.py).
Change lists keep a fixed number of queries whatever a page holds (`list_select_related`,
values computed from the row), and skip the full-table count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from players_app.models import Player
from sessions_project.admin_mixins import UidSearchMixin
from sessions_project.times import iso

from ..api.serializers import effective_status
from ..forms import CloseForm, KickForm, SessionAdminForm
from ..models import GameSession, Membership, SessionStatus
from ..services import lifecycle, membership, sessions
from .events import EventsMixin
from .join_codes import JoinCodeActionMixin
from .membership import InviteInline, MembershipInline, ReservationInline, TeamInline
from .mixins import (
    CHANGE_SESSION,
    CascadesSessionPartsMixin,
    Echo,
    FormulaSafeWriter,
    TextInputFilter,
    admin_actor,
    kickable_players,
    kickable_q,
    missing_object,
    plural,
)

Sessions = QuerySet[GameSession]


class EffectiveStatusFilter(admin.SimpleListFilter):
    """The status as the API reports it: past closesAt or the idle deadline reads as closed."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return SessionStatus.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        due = GameSession.objects.due_q(timezone.now())
        if value == SessionStatus.CLOSED:
            return queryset.filter(Q(status=SessionStatus.CLOSED) | due)
        return queryset.filter(status=value).exclude(due)


class WorkspaceFilter(TextInputFilter):
    title = "workspace"
    parameter_name = "workspace"
    field_name = "workspace_id"


class SessionChangeList(ChangeList):
    """The change list leaves the JSON columns it does not show in the database."""

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("data", "teams_doc", "invites_doc")


CSV_COLUMNS = (
    "uid",
    "name",
    "status",
    "visibility",
    "type",
    "workspaceId",
    "hostUid",
    "hostUsername",
    "members",
    "numTeams",
    "teamSize",
    "hasPassword",
    "serverUid",
    "version",
    "dateCreated",
    "dateModified",
    "closesAt",
    "closedAt",
)


@admin.register(GameSession)
class GameSessionAdmin(EventsMixin, JoinCodeActionMixin, CascadesSessionPartsMixin, UidSearchMixin, admin.ModelAdmin):
    form = SessionAdminForm
    list_display = (
        "title",
        "short_uid",
        "status_now",
        "visibility",
        "type",
        "workspace_id",
        "host_link",
        "members",
        "date_created",
        "version",
    )
    list_filter = (
        EffectiveStatusFilter,
        "visibility",
        "type",
        WorkspaceFilter,
        "highlight",
        ("host", admin.EmptyFieldListFilter),
        "date_created",
        "closed_at",
    )
    search_fields = ("name", "host__username")
    search_help_text = "A name or host username, or any UID: the session's, its host's, its server's or a member's."
    list_select_related = ("host",)
    date_hierarchy = "date_created"
    show_full_result_count = False
    autocomplete_fields = ("host",)
    actions = ("close_now", "close_after", "remove_player", "rotate_join_code", "export_csv")
    readonly_fields = (
        "uid",
        "version",
        "reads_as",
        "date_created",
        "date_modified",
        "creator",
        "members",
        "has_join_password",
        "join_code",
        "last_activity_at",
        "idle_deadline",
        "closes_at",
        "closed_at",
        "is_imported",
        "recent_events",
    )
    fieldsets = (
        (None, {"fields": ("uid", "name", "desc", "highlight", "host", "status", "reads_as", "visibility")}),
        ("Teams", {"fields": ("num_teams", "team_size", "members")}),
        ("Joining", {"fields": ("join_code", "has_join_password", "join_password", "clear_join_password")}),
        ("Routing", {"fields": ("type", "workspace_id", "server_uid", "data")}),
        ("Lifetime", {"fields": ("idle_timeout", "last_activity_at", "idle_deadline", "closes_at", "closed_at")}),
        (
            "Record",
            {"fields": ("version", "expected_version", "date_created", "date_modified", "creator", "is_imported")},
        ),
        ("Events", {"classes": ("collapse",), "fields": ("recent_events",)}),
    )
    add_fieldsets = (
        (None, {"fields": ("name", "desc", "highlight", "host", "status", "visibility")}),
        ("Teams", {"fields": ("num_teams", "team_size")}),
        ("Join password", {"fields": ("join_password",)}),
        ("Routing", {"fields": ("type", "workspace_id", "server_uid", "data")}),
        ("Lifetime", {"fields": ("idle_timeout",)}),
    )
    inlines = (MembershipInline, TeamInline, InviteInline, ReservationInline)

    # -- list columns (computed from the row: no query per row)

    @admin.display(description="session", ordering="name")
    def title(self, obj: GameSession) -> str:
        return obj.name or "(no name)"

    @admin.display(description="UID", ordering="uid")
    def short_uid(self, obj: GameSession) -> str:
        # The full uid is in the title (and on the session's page); search takes it whole.
        return format_html('<code title="{}">{}…</code>', obj.uid, str(obj.uid)[:8])

    @admin.display(description="status", ordering="status")
    def status_now(self, obj: GameSession) -> str:
        now = timezone.now()
        status = obj.effective_status(now)
        if status != obj.status:
            return f"{status} (deadline passed)"
        if status == SessionStatus.CLOSING and obj.closes_at:
            return f"closing until {timezone.localtime(obj.closes_at):%H:%M:%S}"
        return status

    @admin.display(description="reads as")
    def reads_as(self, obj: GameSession) -> str:
        """The status the API reports now (a session past its deadline reads as closed)."""
        return self.status_now(obj)

    @admin.display(description="host", ordering="host__username")
    def host_link(self, obj: GameSession) -> str:
        if (host := obj.host) is None:  # no query for a session without one
            return "system"
        url = reverse("admin:players_app_player_change", args=[obj.host_id])
        return format_html('<a href="{}">{}</a>', url, host.username)

    @admin.display(description="members")
    def members(self, obj: GameSession) -> str:
        capacity = obj.capacity
        count = len(obj.users_doc)
        return f"{count} / {capacity}" if capacity is not None else str(count)

    @admin.display(description="join password", boolean=True)
    def has_join_password(self, obj: GameSession) -> bool:
        return obj.has_password

    # -- queries

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return (
            Q(uid=value)
            | Q(host__uid=value)
            | Q(server_uid=value)
            | Q(Exists(Membership.objects.filter(session=OuterRef("pk"), player__uid=value)))
        )

    def get_changelist(self, request, **kwargs):
        return SessionChangeList

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_inline_instances(self, request, obj=None):
        # Read-only inlines take no part in a save: a POST validates and saves the form alone.
        if obj is None or request.method == "POST":
            return []
        return super().get_inline_instances(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        assert issubclass(form, SessionAdminForm)  # this admin's `form`, as the factory made it
        form.actor = admin_actor(request)
        return form

    def has_delete_permission(self, request: HttpRequest, obj: GameSession | None = None) -> bool:
        # Deleting is a session workflow too (`session_delete`), which needs the change permission.
        return super().has_delete_permission(request, obj) and request.user.has_perm(CHANGE_SESSION)

    # -- saving: the form has already committed through the services (see SessionAdminForm)

    def save_form(self, request, form, change):
        return form.committed

    def save_model(self, request, obj, form, change):
        """Nothing to do: `session_create` / `session_update` saved the session."""

    def save_related(self, request, form, formsets, change):
        """Nothing to do: the session has no many-to-many fields and its inlines are read-only."""

    def delete_model(self, request, obj):
        sessions.session_delete(session_id=obj.pk, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        actor = admin_actor(request)
        _, refusals = self.apply_each(
            request,
            queryset.values_list("pk", flat=True),
            lambda session_id: sessions.session_delete(session_id=session_id, actor=actor),
        )
        self.report_refusals(request, refusals)

    # -- workflows shared by the actions and the session page

    def close_sessions(self, request: HttpRequest, queryset: Sessions, close_after: int) -> int:
        """`session_close` on each session; returns how many changed. Refusals are reported."""
        actor = admin_actor(request)
        how = "Closed now" if close_after == 0 else f"Closing, closes in {close_after} s"

        def close(row: tuple[int, int]) -> GameSession | None:
            session_id, version = row
            session = lifecycle.session_close(session_id=session_id, actor=actor, close_after=close_after)
            # The same version: it was already closing sooner (closesAt never moves later).
            return session if session.version != version else None

        results, refusals = self.apply_each(
            request,
            queryset.values_list("pk", "version"),
            close,
            log=lambda _, session: (session, f"{how} (admin action).") if session else None,
        )
        changed = sum(session is not None for session in results)
        unchanged = len(results) - changed
        if changed:
            verb = "Closed" if close_after == 0 else f"Set to close in {close_after} s:"
            self.message_user(request, f"{verb} {plural(changed, 'session')}.", messages.SUCCESS)
        if unchanged:
            self.message_user(
                request, f"{plural(unchanged, 'session')} already closing sooner: left as they were.", messages.INFO
            )
        self.report_refusals(request, refusals)
        return changed

    def kick_player(self, request: HttpRequest, queryset: Sessions, player: Player) -> int:
        """`session_kick` of one player from each session where it is a member, holds a
        reservation or a pending invite; returns how many sessions changed."""
        actor = admin_actor(request)
        kicked, refusals = self.apply_each(
            request,
            queryset.filter(kickable_q(player)).values_list("pk", flat=True),
            lambda session_id: membership.session_kick(session_id=session_id, actor=actor, player_uid=player.uid),
            log=lambda _, session: (session, f"Removed player {player.username} ({player.uid}) (admin action)."),
        )
        done = len(kicked)
        if done:
            self.message_user(request, f"Removed {player.username} from {plural(done, 'session')}.", messages.SUCCESS)
        elif not refusals:
            self.message_user(request, f"{player.username} is in none of these sessions.", messages.WARNING)
        self.report_refusals(request, refusals)
        return done

    def render_action_form(
        self,
        request: HttpRequest,
        queryset: Sessions,
        form: Form,
        *,
        title: str,
        submit: str,
        action: str | None = None,
    ) -> TemplateResponse:
        """The intermediate page of an action (or of the session page's buttons)."""
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "submit": submit,
            "action": action,
            "sessions": list(queryset.select_related("host")[:20]),
            "count": count,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/sessions_app/gamesession/action_form.html", context)

    # -- actions

    @admin.action(description="Close now", permissions=["change"])
    def close_now(self, request, queryset):
        self.close_sessions(request, queryset, 0)

    @admin.action(description="Close after a grace period…", permissions=["change"])
    def close_after(self, request, queryset):
        form = CloseForm(request.POST if "apply" in request.POST else None, minimum=1)
        if form.is_bound and form.is_valid():
            self.close_sessions(request, queryset, form.cleaned_data["seconds"])
            return None
        return self.render_action_form(
            request, queryset, form, title="Close with a grace period", submit="Close", action="close_after"
        )

    @admin.action(description="Remove a player…", permissions=["change"])
    def remove_player(self, request, queryset):
        form = KickForm(request.POST if "apply" in request.POST else None, players=kickable_players(queryset))
        if form.is_bound and form.is_valid():
            self.kick_player(request, queryset, form.cleaned_data["player"])
            return None
        return self.render_action_form(
            request, queryset, form, title="Remove a player", submit="Remove", action="remove_player"
        )

    @admin.action(description="Export as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """Stream the selected sessions (any number) as CSV, one query read in chunks."""
        columns = (
            "uid",
            "name",
            "status",
            "visibility",
            "type",
            "workspace_id",
            "host__uid",
            "host__username",
            "users_doc",
            "num_teams",
            "team_size",
            "password_hash",
            "server_uid",
            "version",
            "date_created",
            "date_modified",
            "closes_at",
            "idle_deadline",
            "closed_at",
        )
        rows = queryset.order_by("date_created", "uid").values(*columns)
        now = timezone.now()

        def lines() -> Iterable[str]:
            writer = FormulaSafeWriter(Echo())
            yield writer.writerow(CSV_COLUMNS)
            for row in rows.iterator(chunk_size=2000):
                status, closed_at = effective_status(row, now)
                yield writer.writerow(
                    (
                        row["uid"],
                        row["name"],
                        status,
                        row["visibility"],
                        row["type"],
                        row["workspace_id"],
                        row["host__uid"] or "",
                        row["host__username"] or "",
                        len(row["users_doc"]),
                        row["num_teams"],
                        row["team_size"],
                        "yes" if row["password_hash"] else "no",
                        row["server_uid"] or "",
                        row["version"],
                        iso(row["date_created"]),
                        iso(row["date_modified"]),
                        iso(row["closes_at"]) or "",
                        (iso(closed_at) or "") if status == SessionStatus.CLOSED else "",
                    )
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="sessions-{now:%Y%m%d-%H%M%S}.csv"'
        return response

    # -- the session page's buttons: the same workflows for one session

    def get_urls(self):
        urls = super().get_urls()
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/close/",
                self.admin_site.admin_view(self.close_view),
                name="{}_{}_close".format(*info),
            ),
            path(
                "<path:object_id>/remove-player/",
                self.admin_site.admin_view(self.remove_player_view),
                name="{}_{}_remove_player".format(*info),
            ),
            *urls,
        ]

    def _session_for_change(self, request: HttpRequest, object_id: str) -> tuple[GameSession | None, Sessions]:
        session = self.get_object(request, unquote(object_id))
        if session is not None and not self.has_change_permission(request, session):
            raise PermissionDenied
        return session, GameSession.objects.filter(pk=session.pk) if session else GameSession.objects.none()

    def _back_to(self, session: GameSession) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:sessions_app_gamesession_change", args=[session.pk]))

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect | TemplateResponse:
        session, queryset = self._session_for_change(request, object_id)
        if session is None:
            return missing_object(self, request, object_id)
        form = CloseForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            self.close_sessions(request, queryset, form.cleaned_data["seconds"])
            return self._back_to(session)
        return self.render_action_form(request, queryset, form, title=f"Close {session}", submit="Close")

    def remove_player_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect | TemplateResponse:
        session, queryset = self._session_for_change(request, object_id)
        if session is None:
            return missing_object(self, request, object_id)
        players = kickable_players(queryset)
        data = request.POST if request.method == "POST" else None
        initial: dict[str, Any] = {}
        if data is None and request.GET.get("player"):
            initial["player"] = request.GET["player"]
        form = KickForm(data, players=players, initial=initial)
        if form.is_bound and form.is_valid():
            self.kick_player(request, queryset, form.cleaned_data["player"])
            return self._back_to(session)
        return self.render_action_form(
            request, queryset, form, title=f"Remove a player from {session}", submit="Remove"
        )
