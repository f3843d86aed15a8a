"""Admin mixins every app's admin may use (players_app's and sessions_app's alike)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.contrib.admin.views.main import ERROR_FLAG
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    # What an admin mixin extends, for the type checker (mixed into ModelAdmin subclasses).
    AdminBase = ModelAdmin[Any]
else:
    AdminBase = object


class NulSafeMixin(AdminBase):
    """PostgreSQL refuses NUL characters in text: a change list whose parameters hold one
    gets Django's "invalid lookup" page (?e=1) instead of a database error."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)


class UidSearchMixin(NulSafeMixin):
    """A search term that is a UUID matches the uid columns exactly (an index lookup); any
    other term searches `search_fields`. Typing a uid never scans a table casting UUIDs to
    text, and a partial uid never fails."""

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(uid=value)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(self.uid_search_q(value)), False
