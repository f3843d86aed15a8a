"""Database connection set-up of our own (connected in SessionsAppConfig.ready).

Timestamps from PostgreSQL: Django registers a loader of its own for `timestamptz`, a Python
subclass of psycopg's that sets the connection's time zone on every value; it replaces
psycopg's C loader and reads a timestamp about ten times slower (a page of 100 sessions
holds 500 of them: a fifth of the list's time). When the session's time zone is UTC, which
Django sets on every connection with USE_TZ and TIME_ZONE = "UTC", psycopg's C loader
answers the very same values (aware, tzinfo datetime.timezone.utc), so it is put back.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from django.db.backends.base.base import BaseDatabaseWrapper

if TYPE_CHECKING:
    from psycopg.adapt import Loader


def use_c_timestamp_loader(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created receiver: psycopg's C timestamptz loader on a UTC connection."""
    if connection.vendor != "postgresql" or connection.timezone is not UTC:
        return
    raw = connection.connection
    if raw.info.parameter_status("TimeZone") != "UTC":
        return
    import psycopg
    from psycopg.pq import Format

    global _utc_loader
    if _utc_loader is None:
        c_loader = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, Format.TEXT)
        if c_loader is None or not c_loader.__module__.startswith("psycopg_binary"):
            return  # the pure-Python psycopg: nothing faster to put back
        _utc_loader = _utc_loader_class(c_loader)
    raw.adapters.register_loader("timestamptz", _utc_loader)


def _utc_loader_class(c_loader: Any) -> type[Loader]:
    """A loader Django accepts as its own (it compares the loader's `timezone` with the
    connection's on every cursor) whose load() is the C loader's (the C class is final)."""
    from psycopg.adapt import Loader

    class UTCTimestamptzLoader(Loader):
        timezone = UTC

        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            # The C loader's bound method, called without a Python frame in between.
            self.load = c_loader(oid, context).load  # type: ignore[method-assign]

        def load(self, data: Any) -> Any:  # replaced per instance in __init__
            raise NotImplementedError

    return UTCTimestamptzLoader


_utc_loader: type[Loader] | None = None
