"""The catalog (songs and their charts) and scores in admin. Scores are recorded only through
the score workflows (`services.scores`); here staff look and, if need be, delete.
"""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest

from sessions_project.admin_mixins import NulSafeMixin, UidSearchMixin

from ..models import Chart, Score, Song


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
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Score | None = None) -> bool:
        return False

    def uid_search_q(self, value: uuid.UUID) -> Q:
        return Q(session__uid=value) | Q(player__uid=value)
