"""Demo data for development (`manage.py seed_demo`): players, a song catalog, and sessions of
every status and visibility with teams, members, invites, reservations and scores.

Built for volume: rows are written with `bulk_create`, so the rendered `users_doc`,
`teams_doc` and `invites_doc` columns are computed here the way `services.documents.render_documents`
renders them from the tables (tests/test_commands.py checks every seeded session against it).

Idempotent: demo session N always gets the same uid (uuid5) and the same shape (a random
generator seeded with N), so a second run finds it and adds nothing; a larger `--sessions`
adds only the missing ones. Live demo sessions never go idle (idleTimeout 0).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone

from players_app.models import Player
from players_app.services import GAME_SERVERS_GROUP, default_group, player_create
from sessions_project.times import iso

from .models import (
    Chart,
    GameSession,
    Invite,
    InviteState,
    Membership,
    Reservation,
    Score,
    SessionStatus,
    Song,
    Team,
    Visibility,
)
from .services import documents, membership

NAMESPACE = uuid.UUID("6f0e7c52-3a1d-4d8e-9b7a-5c2f1e0d4b93")
PLAYER_PREFIX = "demo-player-"
GAME_SERVER_USERNAME = "demo-game-server"
JOIN_PASSWORD = "demo"
CHUNK = 1000

# Session N's status is STATUS_CYCLE[N % 20]: any 20 consecutive demo sessions hold every status.
STATUS_CYCLE = (
    ["open"] * 7 + ["in_progress"] * 5 + ["closing"] * 1 + ["closed"] * 7
)  # shuffled once below so that neighbours differ
random.Random(4).shuffle(STATUS_CYCLE)
TYPES = ["default"] * 4 + ["ranked"] * 3 + ["casual"] * 2 + ["coop", "tournament"]
ADJECTIVES = ["Midnight", "Neon", "Turbo", "Lazy", "Sunday", "Hyper", "Retro", "Cosmic", "Silent", "Wild"]
NOUNS = ["Marathon", "Jam", "Showdown", "Practice", "Cup", "Groove", "Rush", "League", "Session", "Party"]
DESCRIPTIONS = [
    "Casual run, all welcome",
    "Warm-up before the weekly cup",
    "No quitting mid-song please",
    "Hard charts only",
    "Chill rotation, newcomers welcome",
]
MODES = ["rotation", "versus", "coop", "free-play"]
REGIONS = ["eu-west", "us-east", "ap-south", "sa-east"]
MAPS = ["arcade", "studio", "rooftop", "club"]
DIFFICULTIES = [("EASY", 3), ("NORMAL", 6), ("HARD", 9), ("EXPERT", 12)]
LAMPS = ["", "clear", "full combo", "perfect"]
SONG_WORDS = ["Starlight", "Overdrive", "Paper Moon", "Afterglow", "Glass Heart", "Red Line"]
ARTISTS = ["The Beatmakers", "Luna Park", "DJ Okapi", "Hollow Sun"]
SERVERS = [uuid.uuid5(NAMESPACE, f"server-{n}") for n in range(5)]


def session_uid(index: int) -> uuid.UUID:
    """The uid of demo session `index`: the same on every run, which makes seeding idempotent."""
    return uuid.uuid5(NAMESPACE, f"session-{index}")


def player_username(index: int) -> str:
    return f"{PLAYER_PREFIX}{index + 1:05d}"


@dataclass
class _Plan:
    """One session and the rows that hang on it, before they are written (field -> value)."""

    session: dict[str, Any]
    team_count: int
    members: list[tuple[int, int | None, datetime]] = field(default_factory=list)  # player, team, joined
    invites: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    # player uid -> when this session last changed its sessions view (seed 003's stamp)
    view_changes: dict[str, datetime] = field(default_factory=dict)


def _grade(value: int) -> str:
    for floor, grade in ((990_000, "SSS"), (950_000, "SS"), (900_000, "S"), (800_000, "A"), (700_000, "B")):
        if value >= floor:
            return grade
    return "C"


def _plan_session(
    index: int,
    now: datetime,
    players: list[tuple[int, str]],
    game_server: tuple[int, str],
    charts: list[int],
    password_hash: str,
) -> _Plan:
    """Demo session `index`, fully decided by `index` (and the players and charts there are)."""
    rng = random.Random(f"demo-session-{index}")
    status = STATUS_CYCLE[index % len(STATUS_CYCLE)]
    system = index % 11 == 4  # no host: seed 001's system sessions, run by the game server
    live = status != SessionStatus.CLOSED

    num_teams = rng.choice([0, 0, 2, 2, 2, 3, 4])
    team_size = rng.randint(2, 5) if num_teams else 0
    capacity = num_teams * team_size if num_teams else rng.randint(2, 8)
    capacity = min(capacity, len(players))
    size = rng.randint(0 if system else 1, capacity)
    picked = rng.sample(range(len(players)), size)
    host = None if system else players[picked[0]]

    if live:
        date_created = now - timedelta(seconds=rng.uniform(120, 2 * 24 * 3600))
        end = now
    else:
        date_created = now - timedelta(seconds=rng.uniform(6 * 3600, 30 * 24 * 3600))
        end = date_created + timedelta(seconds=rng.uniform(600, 4 * 3600))
    window = end - date_created
    date_modified = date_created + window * 0.6

    session: dict[str, Any] = {
        "uid": session_uid(index),
        "date_created": date_created,
        "date_modified": date_modified,
        "last_activity_at": date_modified,
        "host_id": host[0] if host else None,
        "creator_id": host[0] if host else game_server[0],
        "server_uid": rng.choice(SERVERS) if rng.random() < 0.6 else None,
        "status": status,
        "visibility": Visibility.PRIVATE.value if index % 4 == 3 else Visibility.PUBLIC.value,
        "num_teams": num_teams,
        "team_size": team_size,
        "password_hash": password_hash if live and rng.random() < 0.15 else "",
        "type": "matchmaking" if system else rng.choice(TYPES),
        "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}" if rng.random() < 0.7 else "",
        "desc": rng.choice(DESCRIPTIONS) if rng.random() < 0.4 else "",
        "highlight": rng.random() < 0.05,
        "workspace_id": f"ws-{rng.randint(1, 25):02d}" if rng.random() < 0.3 else "",
        "data": {"mode": rng.choice(MODES), "region": rng.choice(REGIONS), "map": rng.choice(MAPS)},
        "idle_timeout": 0,  # live demo sessions never go idle
        "idle_deadline": None,
        "closes_at": None,
        "closed_at": None,
    }
    plan = _Plan(session=session, team_count=num_teams)
    inviter = host[0] if host else game_server[0]

    # Members in joining order, each into the smallest team (lowest index on ties), as
    # session_create and session_join place them.
    counts = dict.fromkeys(range(num_teams), 0)
    for order, player_index in enumerate(picked):
        team = None
        if num_teams:
            team = min(counts, key=lambda t: (counts[t], t))
            counts[team] += 1
        joined_at = date_created + window * (0.4 * order / max(size, 1)) + timedelta(microseconds=order)
        plan.members.append((players[player_index][0], team, joined_at))
        if order and rng.random() < 0.2:  # came in by invitation
            plan.invites.append(
                {
                    "player_id": players[player_index][0],
                    "inviting_player_id": inviter,
                    "state": InviteState.ACCEPTED.value,
                    "date_created": joined_at - timedelta(seconds=1),
                    "date_modified": joined_at,
                    "expires_at": None,
                }
            )

    taken = set(picked)

    def outsider() -> int | None:
        """A player not yet in or invited to this session (a few draws: players may be many)."""
        if len(taken) >= len(players):
            return None
        while (candidate := rng.randrange(len(players))) in taken:
            pass
        taken.add(candidate)
        return players[candidate][0]

    if status in (SessionStatus.OPEN, SessionStatus.IN_PROGRESS):
        for k in range(rng.choice([0, 0, 0, 1, 2])):
            if (player_id := outsider()) is None:
                break
            expires_at = None if rng.random() < 0.5 else now + timedelta(seconds=rng.uniform(3600, 7 * 24 * 3600))
            invited_at = date_created + window * 0.5 + timedelta(seconds=k)
            plan.invites.append(
                {
                    "player_id": player_id,
                    "inviting_player_id": inviter,
                    "state": InviteState.PENDING.value,
                    "date_created": invited_at,
                    "date_modified": invited_at,
                    "expires_at": expires_at,
                }
            )
    if rng.random() < 0.1 and (player_id := outsider()) is not None:
        declined_at = date_created + window * 0.45
        plan.invites.append(
            {
                "player_id": player_id,
                "inviting_player_id": inviter,
                "state": InviteState.DECLINED.value,
                "date_created": declined_at,
                "date_modified": declined_at + timedelta(seconds=30),
                "expires_at": None,
            }
        )
    if status == SessionStatus.OPEN:
        room = capacity - size if num_teams else 2  # reservations hold places within capacity
        for _ in range(min(rng.choice([0, 0, 0, 1, 2]), room)):
            if (player_id := outsider()) is None:
                break
            plan.reservations.append(
                {
                    "player_id": player_id,
                    "created_by_id": inviter,
                    "date_created": now - timedelta(seconds=rng.uniform(0, 60)),
                    "expires_at": now + timedelta(seconds=rng.uniform(300, 2 * 3600)),
                }
            )

    if status != SessionStatus.OPEN and charts:
        for player_id, _, joined_at in plan.members:
            for _ in range(rng.randint(0, 3)):
                achieved = joined_at + (end - joined_at) * rng.uniform(0.1, 0.95)
                value = rng.randint(600_000, 1_000_000)
                plan.scores.append(
                    {
                        "player_id": player_id,
                        "chart_id": rng.choice(charts),
                        "value": value,
                        "grade": _grade(value),
                        "lamp": LAMPS[value % len(LAMPS)],
                        "data": {},
                        "time_achieved": achieved,
                        "client_id": None,
                        "date_created": achieved,
                    }
                )

    if status == SessionStatus.CLOSING:  # DELETE ?closeAfter=N a moment ago
        session["date_modified"] = session["last_activity_at"] = now - timedelta(seconds=rng.uniform(0, 60))
        session["closes_at"] = session["date_modified"] + timedelta(seconds=rng.uniform(300, 3600))
    elif status == SessionStatus.CLOSED:
        how = rng.choice(["update", "grace", "idle"])
        if how == "idle":  # no write for an hour: closed at its idle deadline
            session["idle_timeout"] = 3600
            session["closed_at"] = session["last_activity_at"] + timedelta(seconds=3600)
        else:  # closed by the host, at once or when its grace period ran out
            session["closed_at"] = session["date_modified"] = session["last_activity_at"] = end
            session["closes_at"] = end if how == "grace" else None

    # Every join, invite and status change was a write.
    session["version"] = max(size - 1, 0) + len(plan.invites) + (0 if status == SessionStatus.OPEN else 1)
    _render(plan, players)
    _date_view_changes(plan, players)
    return plan


def _date_view_changes(plan: _Plan, players: list[tuple[int, str]]) -> None:
    """When this session last changed each player's sessions view, as the services would have
    stamped it: a live session shows members, pending invites and reservations from the moment
    they were made (a declined invite left at its answer); a closed one left every view when
    it closed."""
    uid_of = dict(players)
    closed_at = plan.session["closed_at"]
    times: dict[int, datetime] = {}
    entries = [(player_id, joined_at) for player_id, _, joined_at in plan.members]
    entries += [
        (i["player_id"], i["date_modified"])
        for i in plan.invites
        if i["state"] in (InviteState.PENDING, InviteState.DECLINED)
    ]
    entries += [(r["player_id"], r["date_created"]) for r in plan.reservations]
    for player_id, at in entries:
        at = closed_at or at
        if player_id not in times or times[player_id] < at:
            times[player_id] = at
    plan.view_changes = {uid_of[player_id]: at for player_id, at in times.items()}


def _render(plan: _Plan, players: list[tuple[int, str]]) -> None:
    """The rendered columns, exactly as services.documents.render_documents builds them."""
    uid_of = dict(players)
    session = plan.session
    session["users_doc"] = [uid_of[player_id] for player_id, _, _ in plan.members]
    session["teams_doc"] = [
        {
            "index": index,
            "name": membership.team_name(index),
            "players": [uid_of[player_id] for player_id, team, _ in plan.members if team == index],
        }
        for index in range(plan.team_count)
    ]
    # date_created differ within a session, so this is the services' (date_created, id) order.
    pending = sorted((i for i in plan.invites if i["state"] == InviteState.PENDING), key=lambda i: i["date_created"])
    session["invites_doc"] = [{"uid": uid_of[i["player_id"]], "expiresAt": iso(i["expires_at"])} for i in pending]


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
        columns = ", ".join(quote(f.column) for f in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"
        self.converters = [self._converter(f) for f in self.fields]

    @staticmethod
    def _converter(f: models.Field) -> Callable[[Any], Any]:
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


def _in_parts(values: list, size: int = 500) -> Iterator[list]:
    """Slices small enough for SQLite's bound on query parameters."""
    for first in range(0, len(values), size):
        yield values[first : first + size]


def _write(plans: list[_Plan], counts: dict[str, int]) -> None:
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

    memberships, invites, reservations, scores = [], [], [], []
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
    password_hash = membership.hash_join_password(JOIN_PASSWORD)
    for chunk in _chunks(0, sessions, CHUNK):
        uids = [session_uid(n) for n in chunk]
        existing: set[uuid.UUID] = set()
        for part in _chunks(0, len(uids), 500):  # SQLite's bound on query parameters
            existing.update(
                GameSession.objects.filter(uid__in=uids[part.start : part.stop]).values_list("uid", flat=True)
            )
        plans = [
            _plan_session(n, now, demo_players, game_server, charts, password_hash)
            for n, uid in zip(chunk, uids, strict=True)
            if uid not in existing
        ]
        if plans:
            with transaction.atomic():
                _write(plans, counts)
        if progress is not None:
            progress(chunk.stop, sessions)
    return counts
