"""What demo session N looks like (`manage.py seed_demo`, sessions_app/demo.py writes it):
its status, visibility, teams, members, invites, reservations and scores, the rendered
document columns and the players' view stamps, all decided by N alone (a random generator
seeded with N) and the players and charts there are.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sessions_project.times import iso

from .models import InviteState, SessionStatus, Visibility
from .services import membership

NAMESPACE = uuid.UUID("6f0e7c52-3a1d-4d8e-9b7a-5c2f1e0d4b93")

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
LAMPS = ["", "clear", "full combo", "perfect"]
SERVERS = [uuid.uuid5(NAMESPACE, f"server-{n}") for n in range(5)]


@dataclass
class Plan:
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


def plan_session(
    index: int,
    uid: uuid.UUID,
    now: datetime,
    players: list[tuple[int, str]],
    game_server: tuple[int, str],
    charts: list[int],
    password_hash: str,
) -> Plan:
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
        "uid": uid,
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
    plan = Plan(session=session, team_count=num_teams)
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


def _date_view_changes(plan: Plan, players: list[tuple[int, str]]) -> None:
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


def _render(plan: Plan, players: list[tuple[int, str]]) -> None:
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
    held = sorted(plan.reservations, key=lambda r: r["date_created"])
    session["reservations_doc"] = [{"uid": uid_of[r["player_id"]], "expiresAt": iso(r["expires_at"])} for r in held]
