"""Players in admin: Django's user admin, with the player's uid, the default group and the
sessions' workflows when a player is deleted."""

from __future__ import annotations

import uuid
from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Q

from sessions_app.admin.mixins import AdminActor, CascadesSessionPartsMixin, UidSearchMixin, kickable_q
from sessions_app.models import LIVE_STATUSES, GameSession
from sessions_app.services import membership
from sessions_project.errors import DomainError, TooManyRequests
from sessions_project.throttling import client_address

from . import services
from .models import Player
from .services import default_group
from .throttles import login_attempt


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """Admin's sign-in, counted with the API's failed sign-ins (LOGIN_FAILURE_RATE): past the
    limit the page refuses every attempt, whatever the password, until the window ends."""

    def clean(self):
        try:
            with login_attempt(username=self.cleaned_data.get("username"), address=client_address(self.request)) as a:
                try:
                    return super().clean()
                except ValidationError:
                    a.count()
                    raise
        except TooManyRequests as exc:
            raise ValidationError(exc.detail, code="throttled") from None


admin.site.login_form = ThrottledAdminAuthenticationForm


class PlayerCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = Player
        fields = ("username",)


class PlayerChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = Player


class PlayerPasswordChangeForm(AdminPasswordChangeForm):
    """Admin's "change password" page, through the service (it revokes refresh tokens)."""

    def save(self, commit=True):
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return services.player_set_password(player=self.user, password=password)


@admin.register(Player)
class PlayerAdmin(CascadesSessionPartsMixin, UidSearchMixin, UserAdmin):
    form = PlayerChangeForm
    add_form = PlayerCreationForm
    change_password_form = PlayerPasswordChangeForm
    actions = ["deactivate_players"]
    list_display = ("username", "uid", "email", "is_staff", "is_superuser", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups", "date_joined")
    search_fields = ("username", "email", "first_name", "last_name")
    search_help_text = "A username, email or name, or a player's UID."
    readonly_fields = ("uid", "date_joined", "last_login")
    date_hierarchy = "date_joined"
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("username", "uid", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Permissions",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": (
                    "API scopes (session:*, session:read-player:any, session:read-player:self, "
                    "customise_session, truncate_sessions) are permissions on sessions: grant them "
                    "here or, better, through a group such as Game servers."
                ),
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            # Through the service: a deactivation revokes the player's refresh tokens.
            services.player_set_active(player=obj, is_active=obj.is_active)

    @admin.action(description="Deactivate selected players (revokes their refresh tokens)")
    def deactivate_players(self, request, queryset):
        players = list(queryset.filter(is_active=True))
        for player in players:
            services.player_set_active(player=player, is_active=False)
            self.log_change(request, player, "Deactivated (admin action); refresh tokens revoked.")
        self.message_user(request, f"Deactivated {len(players)} player(s).", messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            # As `player_create` does for the API: every new player is in the Players group.
            form.instance.groups.add(default_group())

    def delete_model(self, request, obj):
        self._leave_live_sessions(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._leave_live_sessions(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _leave_live_sessions(self, request, players: list[Player]) -> None:
        """Kick the players from their live sessions through `session_kick` first, so host
        hand-over, the session documents and `version` move as they would over the API.
        Closed sessions keep their history as it was."""
        actor = AdminActor(request.user)
        failures: Counter = Counter()
        for player in players:
            present = kickable_q(player)
            live = GameSession.objects.filter(present, status__in=LIVE_STATUSES).exclude(GameSession.objects.due_q())
            for session_id in list(live.values_list("pk", flat=True)):
                try:
                    session = membership.session_kick(session_id=session_id, actor=actor, player_uid=player.uid)
                except DomainError as exc:
                    failures[exc.detail] += 1
                    continue
                # The session changed too (host hand-over, version): its History says why.
                message = f"Removed player {player.username} ({player.uid}): the player was deleted (admin action)."
                self.log_change(request, session, message)
        for detail, count in failures.items():
            self.message_user(
                request, f"{count} session(s) could not remove the player first: {detail}", messages.WARNING
            )

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(uid=value)
