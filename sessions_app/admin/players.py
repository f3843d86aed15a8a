"""The player admin as sessions_app extends it: deleting a player first removes it from its
live sessions through `membership.session_kick`, and the session parts that go with a
player (members, invites, reservations) do not count as permissions missing for the delete.

players_app registers its PlayerAdmin; this module replaces that registration with a subclass
(sessions_app comes after players_app in INSTALLED_APPS, and importing players_app.admin
here makes sure its registration came first). URLs, templates and actions stay those of the
player admin: the model is the same.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.http import HttpRequest

from players_app import admin as players_admin
from players_app.models import Player
from sessions_project.errors import DomainError

from ..models import LIVE_STATUSES, GameSession
from ..services import membership
from .mixins import CascadesSessionPartsMixin, admin_actor, kickable_q

admin.site.unregister(Player)


@admin.register(Player)
class PlayerAdmin(CascadesSessionPartsMixin, players_admin.PlayerAdmin):
    """players_app's PlayerAdmin, with what deleting a player means for its sessions."""

    def delete_model(self, request, obj):
        self._leave_live_sessions(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._leave_live_sessions(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _leave_live_sessions(self, request: HttpRequest, players: list[Player]) -> None:
        """Kick the players from their live sessions through `session_kick` first, so host
        hand-over, the session documents and `version` move as they would over the API.
        Closed sessions keep their history as it was."""
        actor = admin_actor(request)
        failures: Counter[str] = Counter()
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
