"""The join throttles' records: wrong join passwords (per session) and wrong join codes (per
player), each kept a window to count guesses across worker processes. Imported by
`sessions_app.models`, which is where the rest of the code imports them from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .models import GameSession


class JoinPasswordFailure(models.Model):
    """A wrong or missing join password, kept a window (JOIN_PASSWORD_WINDOW) to throttle
    guessing per player and per session across workers."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="+")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Both throttles read a session's recent failures (a few rows: they stop being recorded
        # at the session's limit); old ones are deleted by session and time.
        indexes = [models.Index(fields=["session", "at"], name="join_failure_session_at")]

    def __str__(self) -> str:
        return f"join password failure {self.pk}"


class JoinCodeFailure(models.Model):
    """A join by a code that names no live session, kept a window (JOIN_CODE_WINDOW) to
    throttle one player's guessing (JOIN_CODE_MAX_FAILURES) across workers."""

    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The throttle reads a player's recent failures; old ones are deleted by player and time.
        indexes = [models.Index(fields=["player", "at"], name="join_code_failure_player_at")]

    def __str__(self) -> str:
        return f"join code failure {self.pk}"
