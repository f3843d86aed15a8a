"""The player: the account that joins sessions, and the API's user model."""

import uuid
from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.db import models


class Player(AbstractUser):
    """A game player (or a game server account): the project's AUTH_USER_MODEL."""

    uid = models.UUIDField("UID", default=uuid.uuid4, unique=True, editable=False)

    # createsuperuser --noinput needs nothing beyond username and password.
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = "player"
        verbose_name_plural = "players"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username
