"""Join codes in admin: the session admin's action rotating the codes of the selected sessions
through `join_codes.session_rotate_join_code`, the service the API calls (the session page
shows the code itself as a read-only field), and the wrong codes recorded for the throttle."""

from __future__ import annotations

from django.contrib import admin, messages

from ..models import JoinCodeFailure
from ..services import join_codes
from .mixins import ServiceActionMixin, ViewOnlyAdmin, admin_actor, plural


class JoinCodeActionMixin(ServiceActionMixin):
    @admin.action(description="Rotate the join code", permissions=["change"])
    def rotate_join_code(self, request, queryset):
        actor = admin_actor(request)
        rotated, refusals = self.apply_each(
            request,
            queryset.values_list("pk", flat=True),
            lambda session_id: join_codes.session_rotate_join_code(session_id=session_id, actor=actor),
            log=lambda _, session: (session, "Rotated the join code (admin action)."),
        )
        if rotated:
            self.message_user(request, f"New join codes for {plural(len(rotated), 'session')}.", messages.SUCCESS)
        self.report_refusals(request, refusals)


@admin.register(JoinCodeFailure)
class JoinCodeFailureAdmin(ViewOnlyAdmin):
    """Joins by a code that named no live session (the wrong-code throttle's record)."""

    list_display = ("id", "player", "at")
    list_filter = ("at",)
    list_select_related = ("player",)
    date_hierarchy = "at"
    show_full_result_count = False
