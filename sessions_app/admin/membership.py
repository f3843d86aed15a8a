"""What hangs on a session, in admin: the session page's read-only inlines (members, teams,
invites, reservations) and the change lists of members, teams, invites, reservations, join
password failures and view stamps. They change only through the services' workflows: the
actions call `membership.session_kick`, `invites.invite_revoke` and
`invites.reservation_cancel`, one call per selected row.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from sessions_project.admin_mixins import UidSearchMixin

from ..models import Invite, JoinPasswordFailure, Membership, PlayerSessionsStamp, Reservation, Team
from ..services import invites, membership

if TYPE_CHECKING:
    from ..services.membership import CountedTeam
from .mixins import (
    CHANGE_SESSION,
    VIEW_SESSION,
    ReadOnlyMixin,
    ServiceActionMixin,
    ViewOnlyAdmin,
    admin_actor,
    plural,
)


class SessionPartInline(ReadOnlyMixin, admin.TabularInline):
    """Part of a session, shown on its page; changed only by the session actions."""

    extra = 0
    can_delete = False
    show_change_link = False
    classes = ("session-part",)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
    def size(self, obj: CountedTeam) -> int:
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


class SessionPartAdmin(ServiceActionMixin, UidSearchMixin, ViewOnlyAdmin):
    show_full_result_count = False
    search_fields: ClassVar[tuple[str, ...]] = ("player__username", "session__name")
    search_help_text = "A player's username, a session's name, or a player's or session's UID."

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session__uid=value) | Q(player__uid=value)

    def has_session_change_permission(self, request: HttpRequest) -> bool:
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
        actor = admin_actor(request)
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
            self.message_user(request, f"Removed {plural(len(removed), 'member')}.", messages.SUCCESS)
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
        actor = admin_actor(request)
        revoked, refusals = self.apply_each(
            request,
            queryset.values_list("pk", flat=True),
            lambda invite_id: invites.invite_revoke(invite_id=invite_id, actor=actor),
            log=lambda _, invite: (invite.session, f"Revoked the invite of {invite.player} (admin action)."),
        )
        if revoked:
            self.message_user(request, f"Revoked {plural(len(revoked), 'invite')}.", messages.SUCCESS)
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
        actor = admin_actor(request)
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
            self.message_user(request, f"Cancelled {plural(len(cancelled), 'reservation')}.", messages.SUCCESS)
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
