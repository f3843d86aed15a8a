"""Demo data for development (`manage.py seed_demo`): players, a song catalog, and sessions of
every status and visibility with teams, members, invites, reservations and scores. What each
demo session holds is planned in sessions_app/demo_sessions.py; this module seeds the players
and the catalog, writes the planned sessions, and is the entry point (`seed_demo`).

Built for volume: rows are written with one prepared INSERT per model, so the rendered
`users_doc`, `teams_doc` and `invites_doc` columns are computed in demo_sessions.py the way
`services.documents.render_documents` renders them from the tables (tests/test_commands.py
checks every seeded session against it).

Idempotent: demo session N always gets the same uid (uuid5) and the same shape (a random
generator seeded with N), so a second run finds it and adds nothing; a larger `--sessions`
adds only the missing ones. Live demo sessions never go idle (idleTimeout 0).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone

from players_app.models import Player
from players_app.services import GAME_SERVERS_GROUP, default_group, player_create

from .codes import new_join_code
from .demo_sessions import NAMESPACE, Plan, plan_session
from .models import (
    Chart,
    GameSession,
    Invite,
    Membership,
    Reservation,
    Score,
    Song,
    Team,
)
from .services import documents, join_passwords, membership

_T = TypeVar("_T")

PLAYER_PREFIX = "demo-player-"
GAME_SERVER_USERNAME = "demo-game-server"
JOIN_PASSWORD = "demo"
CHUNK = 1000
DIFFICULTIES = [("EASY", 3), ("NORMAL", 6), ("HARD", 9), ("EXPERT", 12)]
SONG_WORDS = ["Starlight", "Overdrive", "Paper Moon", "Afterglow", "Glass Heart", "Red Line"]
ARTISTS = ["The Beatmakers", "Luna Park", "DJ Okapi", "Hollow Sun"]


def session_uid(index: int) -> uuid.UUID:
    """The uid of demo session `index`: the same on every run, which makes seeding idempotent."""
    return uuid.uuid5(NAMESPACE, f"session-{index}")


def player_username(index: int) -> str:
    return f"{PLAYER_PREFIX}{index + 1:05d}"


def _ensure_players(count: int) -> tuple[list[tuple[int, str]], tuple[int, str], int]:
    """The demo players (id, uid) in index order, the game server account, and how many were new.

    Demo accounts have no usable password: `manage.py issue_token demo-player-00001` gives a token."""
    usernames = [player_username(n) for n in range(count)]
    existing = {
        username: (pk, str(uid))
        for pk, uid, username in Player.objects.filter(username__startswith=PLAYER_PREFIX).values_list(
            "id", "uid", "username"
        )
    }
    missing = [u for u in usernames if u not in existing]
    if missing:
        unusable = make_password(None)
        created = Player.objects.bulk_create([Player(username=u, password=unusable) for u in missing], batch_size=500)
        group = default_group()
        Player.groups.through.objects.bulk_create(
            [Player.groups.through(player_id=p.pk, group_id=group.pk) for p in created], batch_size=500
        )
        existing.update({p.username: (p.pk, str(p.uid)) for p in created})
    server = Player.objects.filter(username=GAME_SERVER_USERNAME).first()
    if server is None:
        server = player_create(username=GAME_SERVER_USERNAME, password=None)
        server.groups.add(Group.objects.get_or_create(name=GAME_SERVERS_GROUP)[0])
    return [existing[u] for u in usernames], (server.pk, str(server.uid)), len(missing)


def _ensure_catalog() -> tuple[list[int], int, int]:
    """The demo songs and their charts; returns chart ids and how many songs and charts were new."""
    wanted = [
        (f"{word} {n + 1}" if n else word, ARTISTS[(i + n) % len(ARTISTS)])
        for n in range(4)
        for i, word in enumerate(SONG_WORDS)
    ]
    existing = set(Song.objects.filter(title__in=[t for t, _ in wanted]).values_list("title", "artist"))
    new_songs = [
        Song(title=title, artist=artist, genre="demo", bpm=120 + 10 * (n % 8), length_seconds=90 + 15 * (n % 9))
        for n, (title, artist) in enumerate(wanted)
        if (title, artist) not in existing
    ]
    Song.objects.bulk_create(new_songs)
    new_charts = [
        Chart(song=song, difficulty=difficulty, level=level) for song in new_songs for difficulty, level in DIFFICULTIES
    ]
    Chart.objects.bulk_create(new_charts)
    songs = Song.objects.filter(genre="demo", title__in=[t for t, _ in wanted])
    charts = list(Chart.objects.filter(song__in=songs).order_by("pk").values_list("pk", flat=True))
    return charts, len(new_songs), len(new_charts)


def _chunks(start: int, stop: int, size: int) -> Iterator[range]:
    for first in range(start, stop, size):
        yield range(first, min(first + size, stop))


class _Inserter:
    """INSERT many rows of one model with a single prepared statement (`executemany`).

    bulk_create spends most of its time compiling each value through the ORM; here each
    column gets one converter to its database value, chosen once. Columns a row does not
    give take the field's default, as the ORM would."""

    def __init__(self, model: type[models.Model]):
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        # A concrete field is one with a column (Field.concrete is `column is not None`).
        columns = ", ".join(quote(f.column) for f in self.fields if f.column is not None)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"
        self.converters = [self._converter(f) for f in self.fields]

    @staticmethod
    def _converter(f: models.Field[Any, Any]) -> Callable[[Any], Any]:
        vendor = connection.vendor
        if isinstance(f, models.DateTimeField) and vendor == "sqlite":
            # What DatabaseOperations.adapt_datetimefield_value writes: naive UTC text.
            return lambda v: None if v is None else v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        if isinstance(f, models.DateTimeField) and vendor == "postgresql":
            return lambda v: v
        if isinstance(f, models.UUIDField) and not connection.features.has_native_uuid_field:
            return lambda v: None if v is None else v.hex
        ops = connection.ops  # once: `connection` is a proxy that looks itself up on every use
        if isinstance(f, models.JSONField):
            return lambda v: ops.adapt_json_value(v, f.encoder)
        if isinstance(f, models.DecimalField):  # whole numbers need no Decimal on either database
            return lambda v: v if isinstance(v, int) else f.get_db_prep_save(v, connection)
        if isinstance(f, (models.ForeignKey, models.IntegerField, models.BooleanField, models.UUIDField)):
            return lambda v: v
        if isinstance(f, models.CharField):
            return lambda v: v
        return lambda v: f.get_db_prep_save(v, connection)

    def insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        fields, converters = self.fields, self.converters
        values = [
            tuple(
                convert(row[f.attname] if f.attname in row else f.get_default())
                for f, convert in zip(fields, converters, strict=True)
            )
            for row in rows
        ]
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, values)


def _in_parts(values: list[_T], size: int = 500) -> Iterator[list[_T]]:
    """Slices small enough for SQLite's bound on query parameters."""
    for first in range(0, len(values), size):
        yield values[first : first + size]


def _distinct_join_codes(plans: list[Plan]) -> None:
    """Give each planned session a join code no other session holds. Drawn one by one as the
    field's default, a hundred thousand codes would almost surely repeat one (the birthday
    bound of 887 million codes), which the live-code constraint refuses."""
    taken = set(GameSession.objects.values_list("join_code", flat=True))
    for plan in plans:
        code = new_join_code()
        while code in taken:
            code = new_join_code()
        taken.add(code)
        plan.session["join_code"] = code


def _write(plans: list[Plan], counts: dict[str, int]) -> None:
    _distinct_join_codes(plans)
    _Inserter(GameSession).insert([p.session for p in plans])
    session_pks: dict[uuid.UUID, int] = {}
    for part in _in_parts([p.session["uid"] for p in plans]):
        session_pks.update(GameSession.objects.filter(uid__in=part).values_list("uid", "pk"))
    pks = [session_pks[p.session["uid"]] for p in plans]

    _Inserter(Team).insert(
        [
            {"session_id": pk, "index": index, "name": membership.team_name(index)}
            for plan, pk in zip(plans, pks, strict=True)
            for index in range(plan.team_count)
        ]
    )
    team_pks: dict[tuple[int, int], int] = {}
    for part in _in_parts([pk for plan, pk in zip(plans, pks, strict=True) if plan.team_count]):
        team_pks.update(
            ((session_id, index), team_pk)
            for session_id, index, team_pk in Team.objects.filter(session_id__in=part).values_list(
                "session_id", "index", "pk"
            )
        )

    memberships: list[dict[str, Any]] = []
    invites: list[dict[str, Any]] = []
    reservations: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for plan, pk in zip(plans, pks, strict=True):
        for player_id, team, joined_at in plan.members:
            team_id = team_pks[(pk, team)] if team is not None else None
            memberships.append({"session_id": pk, "player_id": player_id, "team_id": team_id, "joined_at": joined_at})
        invites.extend({**invite, "session_id": pk} for invite in plan.invites)
        reservations.extend({**reservation, "session_id": pk} for reservation in plan.reservations)
        scores.extend({**score, "session_id": pk} for score in plan.scores)
    for model, rows in ((Membership, memberships), (Invite, invites), (Reservation, reservations), (Score, scores)):
        _Inserter(model).insert(rows)
    view_changes: dict[str, datetime] = {}
    for plan in plans:
        for player_uid, at in plan.view_changes.items():
            if player_uid not in view_changes or view_changes[player_uid] < at:
                view_changes[player_uid] = at
    documents.touch_player_views(view_changes)

    for name, number in (
        ("sessions", len(plans)),
        ("teams", len(team_pks)),
        ("memberships", len(memberships)),
        ("invites", len(invites)),
        ("reservations", len(reservations)),
        ("scores", len(scores)),
    ):
        counts[name] += number


def seed_demo(
    *,
    players: int = 40,
    sessions: int = 300,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Make sure demo players 1..`players` and demo sessions 0..`sessions`-1 exist; returns
    how many rows of each kind were created (all 0 when everything was there).
    `progress(done, total)` is called after each chunk of sessions."""
    if players < 1:
        raise ValueError("players must be at least 1")
    if sessions < 0:
        raise ValueError("sessions must be 0 or more")
    now = now or timezone.now()
    counts = dict.fromkeys(
        ["players", "songs", "charts", "sessions", "teams", "memberships", "invites", "reservations", "scores"], 0
    )
    with transaction.atomic():
        demo_players, game_server, counts["players"] = _ensure_players(players)
        charts, counts["songs"], counts["charts"] = _ensure_catalog()
    password_hash = join_passwords.hash_join_password(JOIN_PASSWORD)
    for chunk in _chunks(0, sessions, CHUNK):
        uids = [session_uid(n) for n in chunk]
        existing: set[uuid.UUID] = set()
        for part in _chunks(0, len(uids), 500):  # SQLite's bound on query parameters
            existing.update(
                GameSession.objects.filter(uid__in=uids[part.start : part.stop]).values_list("uid", flat=True)
            )
        plans = [
            plan_session(n, uid, now, demo_players, game_server, charts, password_hash)
            for n, uid in zip(chunk, uids, strict=True)
            if uid not in existing
        ]
        if plans:
            with transaction.atomic():
                _write(plans, counts)
        if progress is not None:
            progress(chunk.stop, sessions)
    return counts
