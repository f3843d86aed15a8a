"""Players in admin: Django's user admin, with the player's uid and the default group.

What the player admin does about sessions (a deleted player first leaves its live sessions
through the session workflows) is added by sessions_app, which registers a subclass of this
PlayerAdmin (sessions_app/admin/players.py): players_app imports nothing from sessions_app."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from sessions_project.admin_mixins import UidSearchMixin
from sessions_project.errors import TooManyRequests
from sessions_project.throttling import client_address

from . import services
from .models import Player
from .services import default_group
from .throttles import login_attempt


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """Admin's sign-in, counted with the API's failed sign-ins (LOGIN_FAILURE_RATE): past the
    limit the page refuses every attempt, whatever the password, until the window ends."""

    def clean(self) -> dict[str, Any]:
        # Admin's login view always passes the request (AuthenticationForm allows none).
        assert self.request is not None
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

    def save(self, commit: bool = True) -> Player:
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return services.player_set_password(player=self.user, password=password)


@admin.register(Player)
class PlayerAdmin(UidSearchMixin, UserAdmin):
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

    def save_model(self, request: HttpRequest, obj: Player, form: ModelForm[Player], change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            # Through the service: a deactivation revokes the player's refresh tokens.
            services.player_set_active(player=obj, is_active=obj.is_active)

    @admin.action(description="Deactivate selected players (revokes their refresh tokens)")
    def deactivate_players(self, request: HttpRequest, queryset: QuerySet[Player]) -> None:
        players = list(queryset.filter(is_active=True))
        for player in players:
            services.player_set_active(player=player, is_active=False)
            self.log_change(request, player, "Deactivated (admin action); refresh tokens revoked.")
        self.message_user(request, f"Deactivated {len(players)} player(s).", messages.SUCCESS)

    def save_related(self, request: HttpRequest, form: ModelForm[Player], formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # As `player_create` does for the API: every new player is in the Players group.
            form.instance.groups.add(default_group())

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(uid=value)
