"""Template tags of the admin: the dashboard on the admin index."""

from __future__ import annotations

from typing import Any

from django import template

from sessions_app.admin.dashboard import build_dashboard

register = template.Library()


@register.inclusion_tag("admin/sessions_app/dashboard.html", takes_context=True)
def session_dashboard(context: template.Context) -> dict[str, Any]:
    """The dashboard, for staff who may see sessions (its four queries run only for them)."""
    request = context["request"]
    if not request.user.has_perm("sessions_app.view_gamesession"):
        return {"dashboard": None}
    return {"dashboard": build_dashboard()}
