"""Admin for staff: find a session among many, see who is in it, close it, remove a player.

Admin writes nothing itself. Saving a session calls `sessions.session_create` /
`sessions.session_update` (through `SessionAdminForm`), and the actions call
`lifecycle.session_close` and `membership.session_kick`, as the API does: version bumps,
capacity, host hand-over and team resizing are written once. The services check API
permissions on their `actor`; admin passes an `AdminActor`, which holds `session:*` while the
staff member may change sessions here. A refusal (`DomainError`) becomes an admin message.

Members, teams, invites and reservations are shown read-only: they change only through those
workflows. Change lists keep a fixed number of queries whatever a page holds
(`list_select_related`, values computed from the row), and skip the full-table count.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from players_app.models import Player
from sessions_project.errors import DomainError
from sessions_project.times import iso

from .api.serializers import effective_status
from .forms import CloseForm, KickForm, SessionAdminForm
from .models import (
    SCOPE_ANY,
    Chart,
    GameSession,
    Invite,
    JoinPasswordFailure,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    Score,
    SessionStatus,
    Song,
    Team,
    perm,
)
from .services import invites, lifecycle, membership, sessions

admin.site.site_header = "Session service admin"
admin.site.site_title = "Session service"
admin.site.index_title = "Dashboard"

CHANGE_SESSION = "sessions_app.change_gamesession"
SESSION_PARTS = (Membership, Team, Invite, Reservation, JoinPasswordFailure, PlayerSessionsStamp)
VIEW_SESSION = "sessions_app.view_gamesession"

T = TypeVar("T")
R = TypeVar("R")


class AdminActor:
    """A staff member as the services' `actor`.

    It holds `session:*` while the staff member holds the model permission to change sessions
    in admin, and otherwise exactly the staff member's own permissions: no service needs an
    admin special case, and admin can do no more than its permission says."""

    def __init__(self, user):
        self.user = user
        self.id = user.pk
        self.uid = user.uid
        self.username = user.username
        self.is_superuser = user.is_superuser

    def has_perm(self, permission: str, obj=None) -> bool:
        if permission == perm(SCOPE_ANY) and self.user.has_perm(CHANGE_SESSION):
            return True
        return self.user.has_perm(permission, obj)

    def __repr__(self) -> str:
        return f"AdminActor({self.username!r})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def kickable_q(player: Player) -> Q:
    """Sessions where `session_kick` has something to remove: the player is a member, holds an
    active reservation or has a pending invite."""
    return Q(
        Exists(Membership.objects.filter(session=OuterRef("pk"), player=player))
        | Exists(Reservation.objects.active().filter(session=OuterRef("pk"), player=player))
        | Exists(Invite.objects.pending().filter(session=OuterRef("pk"), player=player))
    )


class ServiceActionMixin:
    """Admin actions are one service call per selected row, as the API would make them: a
    refusal (`DomainError`) does not stop the others, and is reported once per reason."""

    def apply_each(
        self,
        request,
        items: Iterable[T],
        call: Callable[[T], R],
        log: Callable[[T, R], tuple[Any, str] | None] | None = None,
    ) -> tuple[list[R], Counter]:
        """`call(item)` for each item, read in full first (the calls change what it selects).
        Returns the results of the calls that went through and the refusals counted by detail.
        `log(item, result)` gives the object and message to record in the admin history, if any."""
        results: list[R] = []
        refusals: Counter = Counter()
        for item in list(items):
            try:
                result = call(item)
            except DomainError as exc:
                refusals[exc.detail] += 1
                continue
            results.append(result)
            entry = log(item, result) if log is not None else None
            if entry is not None:
                self.log_change(request, *entry)
        return results, refusals

    def report_refusals(self, request, refusals: Counter, noun: str = "session", verb: str = "changed") -> None:
        """One message per distinct refusal, not one per row (an action may touch thousands)."""
        for detail, count in refusals.items():
            self.message_user(request, f"{_plural(count, noun)} not {verb}: {detail}", messages.ERROR)


class NulSafeMixin:
    """PostgreSQL refuses NUL characters in text: a change list whose parameters hold one
    gets Django's "invalid lookup" page (?e=1) instead of a database error."""

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)


class UidSearchMixin(NulSafeMixin):
    """A search term that is a UUID matches the uid columns exactly (an index lookup); any
    other term searches `search_fields`. Typing a uid never scans a table casting UUIDs to
    text, and a partial uid never fails."""

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(uid=value)

    def get_search_results(self, request, queryset, search_term):
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(self.uid_search_q(value)), False


class CascadesSessionPartsMixin:
    """Deleting a session or a player takes its members, teams, invites and reservations
    with it. Those admins refuse deleting rows one by one (that would skip the workflows), so
    they must not count as permissions missing for deleting what they belong to."""

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        parts = {str(m._meta.verbose_name) for m in SESSION_PARTS}
        return deleted, model_count, perms_needed - parts, protected


class ReadOnlyMixin:
    """Rows that change only through the session workflows: shown in admin, never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ViewOnlyAdmin(ReadOnlyMixin, NulSafeMixin, admin.ModelAdmin):
    """Rows that change only through the session workflows: listed here, never edited."""


# --- list filters ---------------------------------------------------------------------------


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


class TextInputFilter(admin.SimpleListFilter):
    """An exact-match text box: for columns with too many values to list as links."""

    template = "admin/input_filter.html"
    field_name = ""

    def lookups(self, request, model_admin):
        return [("", "")]  # a filter with no lookups is not shown

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset

    def choices(self, changelist):
        query_string = changelist.get_query_string(remove=[self.parameter_name, "p"])
        yield {
            "selected": not self.value(),
            "query_string": query_string,
            "display": "All",
            "hidden": list(QueryDict(query_string.lstrip("?")).lists()),
        }


class WorkspaceFilter(TextInputFilter):
    title = "workspace"
    parameter_name = "workspace"
    field_name = "workspace_id"


# --- the session page's read-only inlines ---------------------------------------------------


class SessionPartInline(ReadOnlyMixin, admin.TabularInline):
    """Part of a session, shown on its page; changed only by the session actions."""

    extra = 0
    can_delete = False
    show_change_link = False
    classes = ("session-part",)

    def has_view_permission(self, request, obj=None) -> bool:
        # Part of the session's page: whoever may see the session sees its members.
        return request.user.has_perm(VIEW_SESSION) or request.user.has_perm(CHANGE_SESSION)


class MembershipInline(SessionPartInline):
    model = Membership
    verbose_name = "member"
    verbose_name_plural = "members"
    fields = readonly_fields = ("player", "player_uid", "team", "joined_at", "remove")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("player", "team").order_by("joined_at", "id")

    @admin.display(description="UID")
    def player_uid(self, obj: Membership) -> str:
        return str(obj.player.uid)

    @admin.display(description="")
    def remove(self, obj: Membership) -> str:
        url = reverse("admin:sessions_app_gamesession_remove_player", args=[obj.session_id])
        return format_html('<a href="{}?player={}">Remove…</a>', url, obj.player.uid)


class TeamInline(SessionPartInline):
    model = Team
    fields = readonly_fields = ("index", "name", "size")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(size=Count("memberships")).order_by("index")

    @admin.display(description="players")
    def size(self, obj: Team) -> int:
        return obj.size


class InviteInline(SessionPartInline):
    model = Invite
    fields = readonly_fields = ("player", "inviting_player", "state", "date_created", "expires_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("player", "inviting_player")


class ReservationInline(SessionPartInline):
    model = Reservation
    fields = readonly_fields = ("player", "created_by", "date_created", "expires_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("player", "created_by")


# --- sessions -------------------------------------------------------------------------------


class SessionChangeList(ChangeList):
    """The change list leaves the JSON columns it does not show in the database."""

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("data", "teams_doc", "invites_doc")


class _Echo:
    """A file-like object whose write() hands the line back, for a streamed CSV."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(...)`,
# `@SUM(...)`, `-2+3`); tab and carriage return can hide such a start. Players set names,
# types, workspace ids and usernames, so none of it may reach staff as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell with a formula start gets a leading single quote (OWASP's advice: the
    spreadsheet shows it as text); every other value is written as it is."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


class _FormulaSafeWriter:
    """csv.writer whose rows have their text cells neutralised by csv_cell; every CSV
    export of the admin writes through it."""

    def __init__(self, stream) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable) -> str:
        return self._writer.writerow([csv_cell(value) for value in row])


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
class GameSessionAdmin(ServiceActionMixin, CascadesSessionPartsMixin, UidSearchMixin, admin.ModelAdmin):
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
    actions = ("close_now", "close_after", "remove_player", "export_csv")
    readonly_fields = (
        "uid",
        "version",
        "reads_as",
        "date_created",
        "date_modified",
        "creator",
        "members",
        "has_join_password",
        "last_activity_at",
        "idle_deadline",
        "closes_at",
        "closed_at",
        "is_imported",
    )
    fieldsets = (
        (None, {"fields": ("uid", "name", "desc", "highlight", "host", "status", "reads_as", "visibility")}),
        ("Teams", {"fields": ("num_teams", "team_size", "members")}),
        ("Join password", {"fields": ("has_join_password", "join_password", "clear_join_password")}),
        ("Routing", {"fields": ("type", "workspace_id", "server_uid", "data")}),
        ("Lifetime", {"fields": ("idle_timeout", "last_activity_at", "idle_deadline", "closes_at", "closed_at")}),
        (
            "Record",
            {"fields": ("version", "expected_version", "date_created", "date_modified", "creator", "is_imported")},
        ),
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
        if obj.host_id is None:
            return "system"
        url = reverse("admin:players_app_player_change", args=[obj.host_id])
        return format_html('<a href="{}">{}</a>', url, obj.host.username)

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
            | Exists(Membership.objects.filter(session=OuterRef("pk"), player__uid=value))
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
        form.actor = AdminActor(request.user)
        return form

    def has_delete_permission(self, request, obj=None) -> bool:
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
        sessions.session_delete(session_id=obj.pk, actor=AdminActor(request.user))

    def delete_queryset(self, request, queryset):
        actor = AdminActor(request.user)
        _, refusals = self.apply_each(
            request,
            queryset.values_list("pk", flat=True),
            lambda session_id: sessions.session_delete(session_id=session_id, actor=actor),
        )
        self.report_refusals(request, refusals)

    # -- workflows shared by the actions and the session page

    def close_sessions(self, request, queryset: QuerySet, close_after: int) -> int:
        """`session_close` on each session; returns how many changed. Refusals are reported."""
        actor = AdminActor(request.user)
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
            self.message_user(request, f"{verb} {_plural(changed, 'session')}.", messages.SUCCESS)
        if unchanged:
            self.message_user(
                request, f"{_plural(unchanged, 'session')} already closing sooner: left as they were.", messages.INFO
            )
        self.report_refusals(request, refusals)
        return changed

    def kick_player(self, request, queryset: QuerySet, player: Player) -> int:
        """`session_kick` of one player from each session where it is a member, holds a
        reservation or a pending invite; returns how many sessions changed."""
        actor = AdminActor(request.user)
        kicked, refusals = self.apply_each(
            request,
            queryset.filter(kickable_q(player)).values_list("pk", flat=True),
            lambda session_id: membership.session_kick(session_id=session_id, actor=actor, player_uid=player.uid),
            log=lambda _, session: (session, f"Removed player {player.username} ({player.uid}) (admin action)."),
        )
        done = len(kicked)
        if done:
            self.message_user(request, f"Removed {player.username} from {_plural(done, 'session')}.", messages.SUCCESS)
        elif not refusals:
            self.message_user(request, f"{player.username} is in none of these sessions.", messages.WARNING)
        self.report_refusals(request, refusals)
        return done

    def players_in(self, queryset: QuerySet) -> QuerySet:
        """Players a kick could remove from these sessions: members, reserved, invited."""
        session_ids = queryset.order_by().values("pk")
        return Player.objects.filter(
            Exists(Membership.objects.filter(session__in=session_ids, player=OuterRef("pk")))
            | Exists(Reservation.objects.active().filter(session__in=session_ids, player=OuterRef("pk")))
            | Exists(Invite.objects.pending().filter(session__in=session_ids, player=OuterRef("pk")))
        ).order_by("username")

    def render_action_form(self, request, queryset, form, *, title: str, submit: str, action: str | None = None):
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
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
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
        form = KickForm(request.POST if "apply" in request.POST else None, players=self.players_in(queryset))
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
            writer = _FormulaSafeWriter(_Echo())
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

    def _session_for_change(self, request, object_id) -> tuple[GameSession | None, QuerySet]:
        session = self.get_object(request, unquote(object_id))
        if session is not None and not self.has_change_permission(request, session):
            raise PermissionDenied
        return session, GameSession.objects.filter(pk=session.pk if session else None)

    def _back_to(self, session: GameSession) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:sessions_app_gamesession_change", args=[session.pk]))

    def close_view(self, request: HttpRequest, object_id: str):
        session, queryset = self._session_for_change(request, object_id)
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = CloseForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            self.close_sessions(request, queryset, form.cleaned_data["seconds"])
            return self._back_to(session)
        return self.render_action_form(request, queryset, form, title=f"Close {session}", submit="Close")

    def remove_player_view(self, request: HttpRequest, object_id: str):
        session, queryset = self._session_for_change(request, object_id)
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        players = self.players_in(queryset)
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


# --- the parts of a session, viewed; their workflows as actions -----------------------------


class SessionPartAdmin(ServiceActionMixin, UidSearchMixin, ViewOnlyAdmin):
    show_full_result_count = False
    search_fields = ("player__username", "session__name")
    search_help_text = "A player's username, a session's name, or a player's or session's UID."

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session__uid=value) | Q(player__uid=value)

    def has_session_change_permission(self, request) -> bool:
        """The actions here are session workflows: they need the right to change sessions."""
        return request.user.has_perm(CHANGE_SESSION)


@admin.register(Membership)
class MembershipAdmin(SessionPartAdmin):
    list_display = ("id", "session", "player", "team", "joined_at")
    list_filter = ("joined_at", "session__status")
    list_select_related = ("session", "player", "team")
    date_hierarchy = "joined_at"
    actions = ("remove_from_session",)

    @admin.action(description="Remove from their sessions", permissions=["session_change"])
    def remove_from_session(self, request, queryset):
        """`session_kick` for each selected membership (host hand-over and closing included)."""
        actor = AdminActor(request.user)
        removed, refusals = self.apply_each(
            request,
            queryset.select_related("player", "session"),
            lambda member: membership.session_kick(
                session_id=member.session_id, actor=actor, player_uid=member.player.uid
            ),
            log=lambda member, session: (
                session,
                f"Removed player {member.player.username} (admin action).",
            ),
        )
        if removed:
            self.message_user(request, f"Removed {_plural(len(removed), 'member')}.", messages.SUCCESS)
        self.report_refusals(request, refusals)


@admin.register(Team)
class TeamAdmin(UidSearchMixin, ViewOnlyAdmin):
    list_display = ("name", "index", "session")
    list_select_related = ("session",)
    search_fields = ("name", "session__name")
    search_help_text = "A team or session name, or a session's UID."
    show_full_result_count = False

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session__uid=value)


@admin.register(Invite)
class InviteAdmin(SessionPartAdmin):
    list_display = ("id", "session", "player", "inviting_player", "state", "date_created", "expires_at")
    list_filter = ("state", "date_created", "expires_at")
    list_select_related = ("session", "player", "inviting_player")
    search_fields = ("player__username", "inviting_player__username", "session__name")
    search_help_text = "A player's or inviter's username, a session's name, or a player's or session's UID."
    date_hierarchy = "date_created"
    actions = ("revoke",)

    @admin.action(description="Revoke the selected pending invites", permissions=["session_change"])
    def revoke(self, request, queryset):
        """`invite_revoke` for each selected invite."""
        actor = AdminActor(request.user)
        revoked, refusals = self.apply_each(
            request,
            queryset.values_list("pk", flat=True),
            lambda invite_id: invites.invite_revoke(invite_id=invite_id, actor=actor),
            log=lambda _, invite: (invite.session, f"Revoked the invite of {invite.player} (admin action)."),
        )
        if revoked:
            self.message_user(request, f"Revoked {_plural(len(revoked), 'invite')}.", messages.SUCCESS)
        self.report_refusals(request, refusals, noun="invite", verb="revoked")


@admin.register(Reservation)
class ReservationAdmin(SessionPartAdmin):
    list_display = ("id", "session", "player", "created_by", "date_created", "expires_at")
    list_filter = ("date_created", "expires_at")
    list_select_related = ("session", "player", "created_by")
    date_hierarchy = "date_created"
    actions = ("cancel",)

    @admin.action(description="Cancel the selected reservations", permissions=["session_change"])
    def cancel(self, request, queryset):
        """`reservation_cancel` for each selected reservation."""
        actor = AdminActor(request.user)
        cancelled, refusals = self.apply_each(
            request,
            queryset.values_list("pk", "session_id"),
            lambda row: invites.reservation_cancel(reservation_id=row[0], session_id=row[1], actor=actor),
            log=lambda _, reservation: (
                reservation.session,
                f"Cancelled the reservation of {reservation.player} (admin action).",
            ),
        )
        if cancelled:
            self.message_user(request, f"Cancelled {_plural(len(cancelled), 'reservation')}.", messages.SUCCESS)
        self.report_refusals(request, refusals, noun="reservation", verb="cancelled")


@admin.register(JoinPasswordFailure)
class JoinPasswordFailureAdmin(SessionPartAdmin):
    list_display = ("id", "session", "player", "at")
    list_filter = ("at",)
    list_select_related = ("session", "player")
    date_hierarchy = "at"


@admin.register(PlayerSessionsStamp)
class PlayerSessionsStampAdmin(ViewOnlyAdmin):
    """When each player's sessions view last changed (an ETag input, written by the services)."""

    list_display = ("player_uid", "changed_at")
    search_fields = ("=player_uid",)
    date_hierarchy = "changed_at"
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(player_uid=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset.none(), False


# --- catalog and scores ---------------------------------------------------------------------


class ChartInline(admin.TabularInline):
    model = Chart
    extra = 0
    fields = ("difficulty", "level", "date_created")
    readonly_fields = ("date_created",)
    show_change_link = True


@admin.register(Song)
class SongAdmin(NulSafeMixin, admin.ModelAdmin):
    list_display = ("title", "artist", "subtitle", "genre", "bpm", "length_seconds", "date_created")
    list_filter = ("genre", "date_created")
    search_fields = ("title", "artist", "subtitle")
    readonly_fields = ("date_created",)
    date_hierarchy = "date_created"
    show_full_result_count = False
    inlines = (ChartInline,)


@admin.register(Chart)
class ChartAdmin(NulSafeMixin, admin.ModelAdmin):
    list_display = ("__str__", "song", "difficulty", "level", "date_created")
    list_filter = ("difficulty", "date_created")
    list_select_related = ("song",)
    search_fields = ("song__title", "song__artist", "difficulty")
    autocomplete_fields = ("song",)
    readonly_fields = ("date_created",)
    date_hierarchy = "date_created"
    show_full_result_count = False


@admin.register(Score)
class ScoreAdmin(UidSearchMixin, admin.ModelAdmin):
    list_display = ("id", "session", "player", "chart", "value", "grade", "lamp", "time_achieved")
    list_filter = ("grade", "lamp", "time_achieved")
    list_select_related = ("session", "player", "chart__song")
    search_fields = ("player__username", "chart__song__title", "client_id")
    search_help_text = "A player's username, a song title, a client ID, or a player's or session's UID."
    autocomplete_fields = ("session", "player", "chart")
    readonly_fields = ("date_created",)
    date_hierarchy = "time_achieved"
    show_full_result_count = False

    # Scores are recorded only through score_submit and the import (session state, membership,
    # an imported session's span); here staff look and, if need be, delete.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session__uid=value) | Q(player__uid=value)
