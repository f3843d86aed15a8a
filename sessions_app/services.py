"""Session workflows, each written once: the API, admin and management commands call these.

Every change to a session runs in one transaction that first locks the session row
(`_lock`), settles any time-driven close (`_settle`), applies the change and, if the session
document changed, calls `session_commit` to re-render it and bump `version` by exactly one.
Lock order is always session before its teams, members, invites and reservations.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from players_app.models import Player
from sessions_project.conditional import if_match_passes
from sessions_project.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyRequests,
    field_error,
)
from sessions_project.times import iso

from . import permissions
from .models import (
    LIVE_STATUSES,
    GameSession,
    Invite,
    InviteState,
    JoinPasswordFailure,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    SessionStatus,
    Team,
)

S = SessionStatus


# --- join passwords -------------------------------------------------------------------------


def hash_join_password(raw: str) -> str:
    """Django's PBKDF2 with few rounds (JOIN_PASSWORD_ITERATIONS): a few ms per join."""
    if not raw:
        return ""
    hasher = PBKDF2PasswordHasher()
    return hasher.encode(raw, hasher.salt(), iterations=settings.JOIN_PASSWORD_ITERATIONS)


def check_join_password(raw: str | None, encoded: str) -> bool:
    if not raw or not encoded:
        return False
    return PBKDF2PasswordHasher().verify(raw, encoded)


# --- lifecycle ------------------------------------------------------------------------------

# The lifecycle table (README "Session lifecycle"): (from, to) -> how it may happen.
#   "update": PUT/PATCH by the host or session:*
#   "close":  DELETE ?closeAfter=N by the host or session:* (N > 0 -> closing, N = 0 -> closed)
#   "system": time (closesAt, idle deadline) or the last member of a hosted session leaving
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.OPEN, S.IN_PROGRESS): frozenset({"update"}),
    (S.IN_PROGRESS, S.OPEN): frozenset({"update"}),
    (S.OPEN, S.CLOSING): frozenset({"close"}),
    (S.IN_PROGRESS, S.CLOSING): frozenset({"close"}),
    (S.CLOSING, S.CLOSING): frozenset({"close"}),  # only to bring closesAt sooner
    (S.OPEN, S.CLOSED): frozenset({"update", "close", "system"}),
    (S.IN_PROGRESS, S.CLOSED): frozenset({"update", "close", "system"}),
    (S.CLOSING, S.CLOSED): frozenset({"update", "close", "system"}),
}


def check_transition(current: str, target: str, via: str) -> None:
    """409 `invalid_transition` unless `via` may move a session from `current` to `target`.

    Setting a status to its current value by update is allowed (and changes nothing), except
    `closing`: only DELETE with closeAfter makes a session close with a grace period. Closing
    a closed session again (DELETE ?closeAfter=N, any N) is refused: closed is final."""
    if via == "update" and current == target and target != S.CLOSING:
        return
    if via in TRANSITIONS.get((current, target), ()):
        return
    if target == S.CLOSING and via == "update":
        detail = "A session is put in closing only by DELETE with closeAfter"
    elif current == S.CLOSED and target == S.CLOSED:
        detail = "The session is already closed"
    elif current == S.CLOSED:
        detail = "The session is closed; nothing reopens it"
    else:
        detail = f"A session cannot go from {current} to {target}"
    raise Conflict(f"{detail} (current status: {current}).", code="invalid_transition", status=current)


def _settle(session: GameSession, now: datetime, touches: dict[str, datetime] | None = None) -> bool:
    """Record a time-driven close that is due (not a write: `version` does not move).
    Its entries left the players' views at the deadline: their stamps are raised to it, or
    gathered in `touches` for the caller to write once (see touch_player_views)."""
    due = session.due_at()
    if session.status in LIVE_STATUSES and due is not None and due <= now:
        leaving = _leaving_times([session], now)
        if touches is None:
            touch_player_views(leaving)
        else:
            for player_uid, at in leaving.items():
                _raise_time(touches, player_uid, at)
        session.status = S.CLOSED
        session.closed_at = due
        session.save(update_fields=["status", "closed_at"])
        return True
    return False


def _refresh_idle_deadline(session: GameSession, now: datetime) -> None:
    session.last_activity_at = now
    if session.idle_timeout > 0 and session.status in LIVE_STATUSES:
        session.idle_deadline = now + timedelta(seconds=session.idle_timeout)
    else:
        session.idle_deadline = None


# --- rendering and committing ---------------------------------------------------------------


def _render_documents(session: GameSession) -> None:
    """Re-render `users`, `teams` and `invited` from the tables (three small queries)."""
    members = list(
        Membership.objects.filter(session=session).order_by("joined_at", "id").values_list("player__uid", "team_id")
    )
    teams = list(Team.objects.filter(session=session).order_by("index").values_list("id", "index", "name"))
    players_by_team: dict[int, list[str]] = {team_id: [] for team_id, _, _ in teams}
    for player_uid, team_id in members:
        if team_id in players_by_team:
            players_by_team[team_id].append(str(player_uid))
    session.users_doc = [str(player_uid) for player_uid, _ in members]
    session.teams_doc = [
        {"index": index, "name": name, "players": players_by_team[team_id]} for team_id, index, name in teams
    ]
    session.invites_doc = [
        {"uid": str(player_uid), "expiresAt": iso(expires_at)}
        for player_uid, expires_at in Invite.objects.filter(session=session, state=InviteState.PENDING)
        .order_by("date_created", "id")
        .values_list("player__uid", "expires_at")
    ]


def session_commit(session: GameSession, *, now: datetime | None = None, fields: Iterable[str] = ()) -> None:
    """Save a change to the session document: re-render it and bump `version` by one."""
    now = now or timezone.now()
    before = (set(session.users_doc), _invited_uids(session.invites_doc, now))
    _render_documents(session)
    _touch_changed_views(session, before, set(fields), now)
    session.version += 1
    session.date_modified = now
    _refresh_idle_deadline(session, now)
    session.save(
        update_fields={
            *fields,
            "users_doc",
            "teams_doc",
            "invites_doc",
            "version",
            "date_modified",
            "last_activity_at",
            "idle_deadline",
        }
    )


# --- players' sessions views (seed 003) ------------------------------------------------------
# A player's view shows the live sessions it is a member of, invited to (pending, unexpired) or
# holds an active reservation in. Writes that change a view raise the player's stamp (the
# view's lastUpdatedTimestamp); see PlayerSessionsStamp.

STAMP_BATCH = 400  # rows per upsert: two parameters each, under SQLite's oldest limit of 999


def _invited_uids(invites_doc: list[dict[str, Any]], now: datetime) -> set[str]:
    now_iso = iso(now)
    return {i["uid"] for i in invites_doc if i["expiresAt"] is None or i["expiresAt"] > now_iso}


# The session columns that date an entry's leaving by time (see _left_at).
SESSION_CLOCK = ("session__status", "session__closes_at", "session__idle_deadline")


def _left_at(now: datetime, expires_at, status: str, closes_at, idle_deadline) -> datetime | None:
    """When an invite or reservation leaves (or left) its player's view, if it goes now: now,
    or earlier if it expired or its session passed a deadline first. None for a session
    already recorded as closed: its entries left the views when it closed (stamped then)."""
    if status == S.CLOSED:
        return None
    return min(t for t in (now, expires_at, closes_at, idle_deadline) if t is not None)


def _raise_time(times: dict[str, datetime], player_uid: Any, at: datetime) -> None:
    key = str(player_uid)
    if key not in times or times[key] < at:
        times[key] = at


def touch_player_views(times: dict[str, datetime]) -> None:
    """Raise each player's stamp (by uid) to at least the given time, in one upsert per batch.

    A stamp row stays locked until the transaction ends. Rows go in uid order, and each
    transaction calls this once (or only ever for one player), so no two transactions can
    wait on each other's stamps in a cycle: gather first, then write (see the sweeper)."""
    if not times:
        return
    table = connection.ops.quote_name(PlayerSessionsStamp._meta.db_table)
    uid_field = PlayerSessionsStamp._meta.get_field("player_uid")
    at_field = PlayerSessionsStamp._meta.get_field("changed_at")
    keys = sorted(times)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), STAMP_BATCH):
            batch = keys[start : start + STAMP_BATCH]
            params: list[Any] = []
            for key in batch:
                params.append(uid_field.get_db_prep_value(uuid.UUID(key), connection))
                params.append(at_field.get_db_prep_value(times[key], connection))
            cursor.execute(
                f"INSERT INTO {table} (player_uid, changed_at) VALUES {', '.join(['(%s, %s)'] * len(batch))} "
                f"ON CONFLICT (player_uid) DO UPDATE SET changed_at = CASE "
                f"WHEN excluded.changed_at > {table}.changed_at THEN excluded.changed_at "
                f"ELSE {table}.changed_at END",
                params,
            )


def _leaving_times(sessions: Iterable[GameSession], now: datetime) -> dict[str, datetime]:
    """When each entry these sessions show in players' views leaves them as the sessions close
    or go: now, or earlier where the session's deadline, or the invite's or reservation's own
    expiry, had already passed (that change happened then, by time)."""
    cutoffs = {s.pk: min(now, s.due_at() or now) for s in sessions}
    times: dict[str, datetime] = {}
    if not cutoffs:
        return times
    for session_id, player_uid in Membership.objects.filter(session_id__in=cutoffs).values_list(
        "session_id", "player__uid"
    ):
        _raise_time(times, player_uid, cutoffs[session_id])
    entries = [
        *Invite.objects.filter(
            session_id__in=cutoffs, state__in=(InviteState.PENDING, InviteState.EXPIRED)
        ).values_list("session_id", "player__uid", "expires_at"),
        *Reservation.objects.filter(session_id__in=cutoffs).values_list("session_id", "player__uid", "expires_at"),
    ]
    for session_id, player_uid, expires_at in entries:
        cutoff = cutoffs[session_id]
        _raise_time(times, player_uid, min(cutoff, expires_at) if expires_at is not None else cutoff)
    return times


def _touch_changed_views(session: GameSession, before: tuple[set[str], set[str]], fields: set[str], now) -> None:
    """Raise the stamps of the players whose view this commit changes (after re-rendering)."""
    users, invited = set(session.users_doc), _invited_uids(session.invites_doc, now)
    changed = (before[0] ^ users) | (before[1] ^ invited)
    times = dict.fromkeys(changed, now)
    if session.status == S.CLOSED:
        if "status" not in fields:
            return  # closed before this write: it was in no view already
        # Closed by this write: everything it showed leaves the views.
        for player_uid, at in _leaving_times([session], now).items():
            _raise_time(times, player_uid, at)
    elif "type" in fields:
        # The session moves to another group in every view that shows it.
        holders = Reservation.objects.active(now).filter(session=session).values_list("player__uid", flat=True)
        times.update(dict.fromkeys({*users, *invited, *map(str, holders)}, now))
    touch_player_views(times)


def _drop_reservations(queryset, now: datetime) -> int:
    """Delete reservations; an active one leaves its holder's view now, an expired one left it
    when it expired. Returns how many active ones were deleted."""
    rows = list(queryset.values_list("player__uid", "expires_at", *SESSION_CLOCK))
    if not rows:
        return 0
    times: dict[str, datetime] = {}
    for player_uid, expires_at, *session_clock in rows:
        left = _left_at(now, expires_at, *session_clock)
        if left is not None:
            _raise_time(times, player_uid, left)
    touch_player_views(times)
    queryset.delete()
    return sum(1 for _, expires_at, *_ in rows if expires_at > now)


def _mark_expired_invites(queryset, now: datetime) -> None:
    """Mark pending invites past expiresAt as expired. No stamp moves: the row keeps dating
    the expiry (the view reads expired rows of live sessions, and _leaving_times records them
    when their session closes or goes)."""
    queryset.filter(state=InviteState.PENDING, expires_at__lte=now).update(state=InviteState.EXPIRED, date_modified=now)


def _lock(session_id: int) -> GameSession:
    """The session row, locked for the rest of the transaction."""
    try:
        return GameSession.objects.select_for_update().get(pk=session_id)
    except GameSession.DoesNotExist:
        raise NotFound("No such session.", code="session_not_found") from None


def _player_by_uid(value: Any, field: str) -> Player:
    try:
        player_uid = uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(errors=[field_error(field, "Not a valid UUID.", "invalid_uuid")]) from None
    player = Player.objects.filter(uid=player_uid).first()
    if player is None:
        raise InvalidInput(
            f"No player with uid {player_uid}.",
            code="unknown_player",
            errors=[field_error(field, f"No player with uid {player_uid}.", "unknown_player")],
        )
    return player


def _players_by_uid(values: Iterable[Any], field: str) -> list[Player]:
    """The players a list names, in its order and without repeats, in one query; 400 naming
    `field[index]` for the first uid that is malformed or unknown."""
    wanted: list[uuid.UUID] = []
    for index, value in enumerate(values):
        try:
            wanted.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidInput(errors=[field_error(f"{field}[{index}]", "Not a valid UUID.", "invalid_uuid")]) from None
    found = {p.uid: p for p in Player.objects.filter(uid__in=set(wanted))} if wanted else {}
    players: dict[int, Player] = {}
    for index, player_uid in enumerate(wanted):
        if player_uid not in found:
            message = f"No player with uid {player_uid}."
            raise InvalidInput(
                message, code="unknown_player", errors=[field_error(f"{field}[{index}]", message, "unknown_player")]
            )
        players.setdefault(found[player_uid].pk, found[player_uid])
    return list(players.values())


# --- teams ----------------------------------------------------------------------------------


def _team_name(index: int) -> str:
    return f"Team {index + 1}"


def _teams_with_counts(session: GameSession) -> list[Team]:
    return list(Team.objects.filter(session=session).annotate(size=Count("memberships")).order_by("index"))


def validate_team_index(num_teams: int, requested: int | None) -> None:
    """400 for a team index the session does not have (its teams are 0 to numTeams - 1)."""
    if requested is None or 0 <= requested < num_teams:
        return
    if num_teams == 0:
        message = "This session has no teams."
        raise InvalidInput(message, errors=[field_error("team", message, "no_teams")])
    message = f"Team index must be from 0 to {num_teams - 1}."
    raise InvalidInput(message, errors=[field_error("team", message, "invalid_team")])


def _choose_team(session: GameSession, teams: list[Team], requested: int | None) -> Team | None:
    """The team a joining player goes to: the requested one (409 when full), else the
    smallest with room, lowest index on ties."""
    validate_team_index(len(teams), requested)
    if not teams:
        return None
    room = [t for t in teams if session.team_size == 0 or t.size < session.team_size]
    if requested is not None:
        team = next(t for t in teams if t.index == requested)
        if team not in room:
            raise Conflict(f"Team {requested} is full.", code="team_full")
        return team
    if not room:
        raise Conflict("The session is full.", code="session_full")
    return min(room, key=lambda t: (t.size, t.index))


def _resize_teams(session: GameSession, num_teams: int, team_size: int, now: datetime) -> None:
    """Add or remove teams for new numTeams/teamSize; 409 if members and active reservations
    would no longer fit. Players keep their team where it still exists and has room; the
    others move to the smallest teams."""
    members = list(Membership.objects.filter(session=session).select_related("team").order_by("joined_at", "id"))
    reserved = Reservation.objects.active(now).filter(session=session).count()
    if num_teams > 0 and team_size > 0 and len(members) + reserved > num_teams * team_size:
        raise Conflict(
            f"{len(members)} members and {reserved} reservations do not fit in {num_teams} teams of {team_size}.",
            code="teams_do_not_fit",
        )
    existing = {t.index: t for t in Team.objects.filter(session=session)}
    for index in range(num_teams):
        if index not in existing:
            existing[index] = Team.objects.create(session=session, index=index, name=_team_name(index))
    Team.objects.filter(session=session, index__gte=num_teams).delete()
    teams = [existing[i] for i in range(num_teams)]
    counts = {t.index: 0 for t in teams}
    homeless: list[Membership] = []
    for member in members:
        index = member.team.index if member.team_id and member.team else None
        if index is not None and index < num_teams and (team_size == 0 or counts[index] < team_size):
            counts[index] += 1
        else:
            homeless.append(member)
    for member in homeless:
        if teams:
            index = min(counts, key=lambda i: (counts[i], i))
            counts[index] += 1
            member.team = teams[index]
        else:
            member.team = None
        member.save(update_fields=["team"])


# --- quotas ---------------------------------------------------------------------------------
# Per-player limits (0: none). session:* accounts are exempt: callers check is_operator first.


def _quota_exceeded(message: str) -> Conflict:
    return Conflict(message, code="quota_exceeded")


def check_live_sessions_quota(player_id: int, now: datetime) -> None:
    """409 `quota_exceeded` if the player already hosts QUOTA_LIVE_SESSIONS_PER_HOST live
    sessions (open, in progress or closing as of now: one past its deadline no longer counts).
    The player's row is locked first, so that creates and host hand-overs racing for its last
    place are counted one after another; the count is a new statement, which on PostgreSQL
    sees what the transaction it waited for committed."""
    limit = settings.QUOTA_LIVE_SESSIONS_PER_HOST
    if not limit:
        return
    list(Player.objects.select_for_update().filter(pk=player_id).order_by().values_list("pk", flat=True))
    live = Q(host_id=player_id, status__in=LIVE_STATUSES) & ~GameSession.objects.due_q(now)
    if GameSession.objects.filter(live).order_by()[:limit].count() >= limit:
        raise _quota_exceeded(f"A player may host at most {limit} live sessions at once.")


def check_pending_invites_quota(pending: int) -> None:
    """409 `quota_exceeded` if a session would hold more than QUOTA_PENDING_INVITES_PER_SESSION
    pending invites (callers count under the session's row lock)."""
    limit = settings.QUOTA_PENDING_INVITES_PER_SESSION
    if limit and pending > limit:
        raise _quota_exceeded(f"A session may hold at most {limit} pending invites.")


# --- create and update ----------------------------------------------------------------------

CREATE_STATUSES = (S.OPEN, S.IN_PROGRESS)


@transaction.atomic
def session_create(*, actor, values: dict[str, Any], counts_as_live: bool = True) -> GameSession:
    """Create a session; the creator (unless a session:* account naming others) is its first member.
    `counts_as_live=False` only for a session closed in the same transaction (score import):
    it is never live, so it takes nothing from the host's quota."""
    now = timezone.now()
    operator = permissions.is_operator(actor)
    status = values.get("status", S.OPEN)
    if status not in CREATE_STATUSES:
        message = "A new session starts open or in_progress."
        raise InvalidInput(message, errors=[field_error("status", message, "invalid_choice")])

    users = values.get("users")
    actor_uid = str(actor.uid)
    if users is not None and {str(u) for u in users} <= {actor_uid} and (users or not operator):
        # Naming only the creator changes nothing; nor does naming nobody, except for a
        # session:* account, which may create a session with no member for players to fill.
        users = None
    if users is not None and not operator:
        raise Forbidden("Only session:* accounts may create a session with other users in it.", code="users_forbidden")
    member_ids: list[int]
    if users is None:
        member_ids = [actor.id]
    else:
        member_ids = [player.id for player in _players_by_uid(users, "users")]

    host_id: int | None = actor.id
    if "host_uid" in values:
        host_value = values["host_uid"]
        if host_value is None or str(host_value) != actor_uid:
            if not operator:
                raise Forbidden("Only session:* accounts may set hostUid to someone else.", code="host_forbidden")
            host_id = None if host_value is None else _player_by_uid(host_value, "hostUid").id
    if "server_uid" in values:
        permissions.authorize_server_uid(actor, None, values["server_uid"])
    # Resolved before any 409 below: an unknown invited player is a malformed request (400).
    invited = _players_by_uid(values.get("invited") or (), "invited")

    session = GameSession(
        creator_id=actor.id,
        host_id=host_id,
        status=status,
        data=values.get("data", {}),
        server_uid=values.get("server_uid"),
        visibility=values.get("visibility", "public"),
        num_teams=values.get("num_teams", 0),
        team_size=values.get("team_size", 0),
        password_hash=hash_join_password(values.get("password") or ""),
        type=values.get("type", "default"),
        name=values.get("name", ""),
        desc=values.get("desc", ""),
        highlight=values.get("highlight", False),
        workspace_id=values.get("workspace_id", ""),
        idle_timeout=values.get("idle_timeout", settings.SESSION_IDLE_TIMEOUT),
        date_created=now,
        date_modified=now,
    )
    capacity = session.capacity
    if capacity is not None and len(member_ids) > capacity:
        raise Conflict(f"{len(member_ids)} users do not fit in a session of {capacity}.", code="session_full")
    if counts_as_live and not operator:
        check_live_sessions_quota(actor.id, now)  # a player hosts what it creates
    _refresh_idle_deadline(session, now)
    session.save()
    teams = [Team(session=session, index=i, name=_team_name(i)) for i in range(session.num_teams)]
    Team.objects.bulk_create(teams)
    counts = dict.fromkeys(range(len(teams)), 0)
    memberships = []
    for offset, player_id in enumerate(member_ids):
        team = None
        if teams:
            index = min(counts, key=lambda i: (counts[i], i))
            counts[index] += 1
            team = teams[index]
        # Distinct join times keep the creation order as the hand-over order.
        memberships.append(
            Membership(session=session, player_id=player_id, team=team, joined_at=now + timedelta(microseconds=offset))
        )
    Membership.objects.bulk_create(memberships)
    if invited:
        _set_invited(session, actor, invited, now)
    _render_documents(session)
    session.save(update_fields=["users_doc", "teams_doc", "invites_doc"])
    touch_player_views(dict.fromkeys([*session.users_doc, *_invited_uids(session.invites_doc, now)], now))
    return session


def etag_for(session_uid, version: int) -> str:
    """Strong ETag of a session document: it changes exactly when `version` does."""
    return f'"{session_uid}-{version}"'


SIMPLE_FIELDS = ("data", "visibility", "server_uid", "type", "name", "desc", "highlight", "workspace_id")
_UNCHANGED = object()


def _host_change(session: GameSession, actor, values: dict[str, Any]) -> Any:
    """The host an update names if it is not the current one: None (403 without session:*), or
    a member (400 otherwise, unless session:*). `_UNCHANGED` when hostUid is absent or current."""
    if "host_uid" not in values:
        return _UNCHANGED
    host_value = values["host_uid"]
    current = session.host.uid if session.host_id else None
    if (None if host_value is None else str(host_value)) == (None if current is None else str(current)):
        return _UNCHANGED
    if host_value is None:
        permissions.authorize_host_removal(actor)
        return None
    player = _player_by_uid(host_value, "hostUid")
    if not permissions.is_operator(actor) and not Membership.objects.filter(session=session, player=player).exists():
        message = "The host can be handed only to a member of the session."
        raise InvalidInput(message, code="host_not_member", errors=[field_error("hostUid", message)])
    return player


@transaction.atomic
def session_update(
    *,
    session_id: int,
    actor,
    values: dict[str, Any],
    expected_version: int | None = None,
    if_match: str | None = None,
) -> GameSession:
    """Apply an update (PUT/PATCH or admin). Only members that differ are written; if none
    differs, nothing changes and `version` stays. Checks, in the API's order: permission (403),
    the values that name players (400), If-Match (412), version (409 with the current version),
    then the state rules (409)."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    permissions.authorize_session_update(actor, session, set(values) - {"users"})
    if "server_uid" in values:
        permissions.authorize_server_uid(actor, session.server_uid, values["server_uid"])
    new_host = _host_change(session, actor, values)
    if "users" in values and sorted(str(u) for u in values["users"]) != sorted(session.users_doc):
        message = "users changes only through join, leave, kick and invites."
        raise InvalidInput(message, code="read_only", errors=[field_error("users", message, "read_only")])
    invited = _players_by_uid(values["invited"], "invited") if "invited" in values else None
    if not if_match_passes(if_match, etag_for(session.uid, session.version)):
        raise PreconditionFailed(version=session.version)
    if expected_version is not None and expected_version != session.version:
        raise Conflict(
            f"The session is at version {session.version}, not {expected_version}.",
            code="version_conflict",
            version=session.version,
        )
    if (
        isinstance(new_host, Player)
        and values.get("status", session.status) in LIVE_STATUSES
        and not permissions.is_operator(actor)
    ):
        # A host hands a live session over only to a player with room in its quota; the
        # automatic hand-over when a host leaves or is kicked is never refused.
        check_live_sessions_quota(new_host.id, now)

    changed: set[str] = set()
    for name in SIMPLE_FIELDS:
        if name in values and getattr(session, name) != values[name]:
            setattr(session, name, values[name])
            changed.add(name)

    if "password" in values:
        raw = values["password"] or ""
        if raw and not check_join_password(raw, session.password_hash) or (not raw and session.password_hash):
            session.password_hash = hash_join_password(raw)
            changed.add("password_hash")

    if "idle_timeout" in values and values["idle_timeout"] != session.idle_timeout:
        session.idle_timeout = values["idle_timeout"]
        changed.add("idle_timeout")

    if new_host is not _UNCHANGED:
        session.host = new_host
        changed.add("host")

    num_teams = values.get("num_teams", session.num_teams)
    team_size = values.get("team_size", session.team_size)
    if (num_teams, team_size) != (session.num_teams, session.team_size):
        _resize_teams(session, num_teams, team_size, now)
        session.num_teams, session.team_size = num_teams, team_size
        changed.update({"num_teams", "team_size"})

    if "status" in values and values["status"] != session.status:
        check_transition(session.status, values["status"], "update")
        session.status = values["status"]
        changed.add("status")
        if session.status == S.CLOSED:
            session.closed_at = now
            changed.add("closed_at")
    elif "status" in values:
        check_transition(session.status, values["status"], "update")

    if invited is not None and _set_invited(session, actor, invited, now):
        changed.add("invites")

    if changed:
        session_commit(session, now=now, fields=changed - {"invites"})
    return session


# --- delete, truncate, close, heartbeat -----------------------------------------------------


@transaction.atomic
def session_delete(*, session_id: int, actor) -> None:
    """Delete a session and everything on it (host or session:*)."""
    session = _lock(session_id)
    permissions.authorize_session_manage(actor, session)
    if session.status in LIVE_STATUSES:
        touch_player_views(_leaving_times([session], timezone.now()))
    session.delete()


TRUNCATE_BATCH = 500  # sessions deleted per statement group (their cascades list the ids)


def session_truncate(*, sessions: QuerySet[GameSession] | None = None) -> int:
    """Delete these sessions (DELETE /sessions: the caller's visible sessions narrowed by the
    list filters, as /sessions/count counts them), every session when None; returns how many.

    The rows are locked and read first, so exactly the sessions counted (and whose members,
    invitees and reservation holders get their view stamps raised) are the ones deleted."""
    now = timezone.now()
    queryset = GameSession.objects.all() if sessions is None else sessions
    with transaction.atomic():
        # of=("self",): a hostUid filter joins the player table, whose rows must not be locked.
        doomed = list(
            queryset.order_by("pk").select_for_update(of=("self",)).only("pk", "status", "closes_at", "idle_deadline")
        )
        live = [session for session in doomed if session.status in LIVE_STATUSES]
        touches: dict[str, datetime] = {}
        for start in range(0, len(live), STAMP_BATCH):
            for player_uid, at in _leaving_times(live[start : start + STAMP_BATCH], now).items():
                _raise_time(touches, player_uid, at)
        touch_player_views(touches)
        for start in range(0, len(doomed), TRUNCATE_BATCH):
            GameSession.objects.filter(pk__in=[s.pk for s in doomed[start : start + TRUNCATE_BATCH]]).delete()
    return len(doomed)


CLOSE_AFTER_MAX = 3600


@transaction.atomic
def session_close(*, session_id: int, actor, close_after: int) -> GameSession:
    """DELETE ?closeAfter=N: closed now (N = 0) or closing until N seconds from now; on a
    closing session only ever brings closesAt sooner."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    if actor is not None:
        permissions.authorize_session_manage(actor, session)
    if close_after == 0:
        check_transition(session.status, S.CLOSED, "close")
        session.status = S.CLOSED
        session.closed_at = now
        session_commit(session, now=now, fields={"status", "closed_at"})
        return session
    check_transition(session.status, S.CLOSING, "close")
    closes_at = now + timedelta(seconds=close_after)
    if session.status == S.CLOSING and session.closes_at is not None and closes_at >= session.closes_at:
        return session  # never later: nothing changes
    session.status = S.CLOSING
    session.closes_at = closes_at
    session_commit(session, now=now, fields={"status", "closes_at"})
    return session


@transaction.atomic
def session_heartbeat(*, session_id: int, actor) -> GameSession:
    """Keep a session from going idle. Not a write: `version` and the ETag stay."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    permissions.authorize_heartbeat(actor, session)
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    _refresh_idle_deadline(session, now)
    session.save(update_fields=["last_activity_at", "idle_deadline"])
    return session


def close_due_sessions(
    *, now: datetime | None = None, batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> list[GameSession]:
    """Record every due time-driven close (closesAt or idle deadline passed). Idempotent;
    several copies may run at once: rows another copy holds are skipped (SKIP LOCKED).
    `progress` is called after each batch with how many were closed so far."""
    now = now or timezone.now()
    closed: list[GameSession] = []
    skip_locked = connection.features.has_select_for_update_skip_locked
    while True:
        with transaction.atomic():
            queryset = GameSession.objects.due(now).order_by("pk")
            if skip_locked:
                queryset = queryset.select_for_update(skip_locked=True)
            batch = list(queryset[:batch_size])
            touches: dict[str, datetime] = {}
            for session in batch:
                _settle(session, now, touches)
            touch_player_views(touches)  # once per batch, in uid order (see touch_player_views)
            closed.extend(batch)
        if progress is not None and batch:
            progress(len(closed))
        if len(batch) < batch_size:
            break
    with transaction.atomic():  # each deletion raises the stamp it dates (players' views)
        _drop_reservations(Reservation.objects.filter(expires_at__lte=now), now)
    _mark_expired_invites(Invite.objects.all(), now)
    return closed


# --- join and leave -------------------------------------------------------------------------


def _throttle_check(session: GameSession, player_id: int, now: datetime) -> None:
    """429 while the session has had JOIN_PASSWORD_SESSION_MAX_FAILURES failures within the
    window (whoever made them), or this player JOIN_PASSWORD_MAX_FAILURES of them there.

    One query reads the session's most recent failures, at most the session's limit: failures
    are recorded only while neither limit is reached, so fewer than that many rows means all
    of the window's, and the player's are among them. With the limit reached, the player's
    own throttle lifts no later than the session's unless its failures are among those read."""
    window = timedelta(seconds=settings.JOIN_PASSWORD_WINDOW)
    session_max = settings.JOIN_PASSWORD_SESSION_MAX_FAILURES
    player_max = settings.JOIN_PASSWORD_MAX_FAILURES
    recent = list(
        JoinPasswordFailure.objects.filter(session=session, at__gt=now - window)
        .order_by("-at")
        .values_list("player_id", "at")[:session_max]
    )
    mine = [at for failed_by, at in recent if failed_by == player_id]
    ends = []  # when each throttle that applies lifts
    if len(mine) >= player_max:
        ends.append(mine[player_max - 1] + window)
    if len(recent) >= session_max:
        ends.append(recent[session_max - 1][1] + window)
    if not ends:
        return
    until = max(ends)
    if len(recent) >= session_max:
        detail = "Too many wrong passwords for this session from all players"
    else:
        detail = "Too many wrong passwords for this session"
    retry_after = max(1, math.ceil((until - now).total_seconds()))
    raise TooManyRequests(
        f"{detail}; try again in {retry_after} s.",
        code="join_throttled",
        headers={"Retry-After": str(retry_after)},
    )


def _check_password(session: GameSession, actor, password: str | None, now: datetime) -> None:
    """Throttle first (a throttled join learns nothing about its password), then verify.
    A failure is recorded in its own committed write, outside the join's transaction. One
    session's checks run one at a time (its row is locked while they are judged), so a burst
    of concurrent guesses, from one player or many, is counted as a sequence would be, not
    all read as under the limit. Once throttled, a check costs no hashing and takes the lock
    only for a query."""
    window = timedelta(seconds=settings.JOIN_PASSWORD_WINDOW)
    with transaction.atomic():
        list(GameSession.objects.select_for_update().filter(pk=session.pk).values_list("pk", flat=True))
        _throttle_check(session, actor.id, now)
        if check_join_password(password, session.password_hash):
            return
        JoinPasswordFailure.objects.filter(session=session, at__lte=now - window).delete()
        JoinPasswordFailure.objects.create(session=session, player_id=actor.id, at=now)
    if password:
        raise Forbidden("Wrong session password.", code="wrong_password")
    raise Forbidden("This session needs a password to join.", code="password_required")


def _joinable(session: GameSession, status: str | None = None) -> None:
    status = status or session.status
    if status != S.OPEN:
        raise Conflict(
            f"Only an open session can be joined (current status: {status}).",
            code="not_joinable",
            status=status,
        )


def session_join(
    *, session_id: int, actor, password: str | None = None, team: int | None = None, via_invite: bool = False
) -> GameSession:
    """Join a session: the password unless the caller holds a reservation or invite (or is
    already in), then within capacity (a reservation's place is the caller's own), into the
    requested team or the smallest one. A repeated join by a member changes nothing."""
    now = timezone.now()
    session = GameSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.", code="session_not_found")
    validate_team_index(session.num_teams, team)  # a malformed request (400) before any 409
    # A session that is not open refuses every join with 409 before any password is looked
    # at (issue 5: "every join gets 409"), so guesses on it are neither answered nor counted.
    _joinable(session, session.effective_status(now))
    member = str(actor.uid) in session.users_doc
    if session.password_hash and not member and not via_invite:
        reserved = Reservation.objects.active(now).filter(session=session, player_id=actor.id).exists()
        if not reserved and not Invite.objects.pending(now).filter(session=session, player_id=actor.id).exists():
            _check_password(session, actor, password, now)
    with transaction.atomic():
        session = _lock(session_id)
        _settle(session, now)
        _joinable(session)
        if Membership.objects.filter(session=session, player_id=actor.id).exists():
            return session
        reservation = Reservation.objects.active(now).filter(session=session, player_id=actor.id).first()
        capacity = session.capacity
        if capacity is not None and reservation is None:
            taken = Membership.objects.filter(session=session).count()
            taken += Reservation.objects.active(now).filter(session=session).count()
            if taken >= capacity:
                raise Conflict("The session is full.", code="session_full")
        chosen = _choose_team(session, _teams_with_counts(session), team)
        Membership.objects.create(session=session, player_id=actor.id, team=chosen, joined_at=now)
        if reservation is not None:
            reservation.delete()
        # An invite that had expired stays expired: joining by password does not accept it.
        Invite.objects.pending(now).filter(session=session, player_id=actor.id).update(
            state=InviteState.ACCEPTED, date_modified=now
        )
        session_commit(session, now=now)
        return session


def _remove_member(session: GameSession, player_id: int, now: datetime) -> set[str]:
    """Take a player out of `users` and its team; hand the host over or close the session.
    Returns the session fields that changed besides the rendered members."""
    Membership.objects.filter(session=session, player_id=player_id).delete()
    changed: set[str] = set()
    if session.host_id == player_id:
        successor = Membership.objects.filter(session=session).order_by("joined_at", "id").first()
        if successor is not None:
            session.host_id = successor.player_id
            changed.add("host")
    if session.host_id is not None and not Membership.objects.filter(session=session).exists():
        # The last member of a hosted session left: it closes and keeps its last host.
        session.status = S.CLOSED
        session.closed_at = now
        changed.update({"status", "closed_at"})
    return changed


@transaction.atomic
def session_leave(*, session_id: int, actor) -> GameSession:
    """Leave a session (also while it is closing); 409 for a non-member or a closed session."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    if not Membership.objects.filter(session=session, player_id=actor.id).exists():
        raise Conflict("You are not a member of this session.", code="not_member")
    changed = _remove_member(session, actor.id, now)
    session_commit(session, now=now, fields=changed)
    return session


# --- teams and kicks ------------------------------------------------------------------------


@transaction.atomic
def session_move_to_team(*, session_id: int, actor, index: int, player_uid: Any = None) -> GameSession:
    """A member switches team, or the host (or session:*) moves another member."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    if player_uid is None or str(player_uid) == str(actor.uid):
        player_id = actor.id
    else:
        permissions.authorize_session_manage(actor, session)
        player_id = _player_by_uid(player_uid, "player").id
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    membership = Membership.objects.filter(session=session, player_id=player_id).first()
    if membership is None:
        raise Conflict("The player is not a member of this session.", code="not_member")
    teams = _teams_with_counts(session)
    target = next((t for t in teams if t.index == index), None)
    if target is None:
        raise NotFound(f"The session has no team {index}.", code="team_not_found")
    if membership.team_id == target.id:
        return session
    if session.team_size and target.size >= session.team_size:
        raise Conflict(f"Team {index} is full.", code="team_full")
    membership.team = target
    membership.save(update_fields=["team"])
    session_commit(session, now=now)
    return session


@transaction.atomic
def session_kick(*, session_id: int, actor, player_uid: Any) -> GameSession:
    """The host removes a player's membership, active reservation and pending invite alike;
    409 for oneself, for a player with none of these (expired ones do not count) or in a
    closed session. `version` moves when `users` or `invited` changes, not for a reservation."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = _player_by_uid(player_uid, "player")
    if player.id == actor.id:
        raise Conflict("You cannot kick yourself; leave instead.", code="kick_self")
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    is_member = Membership.objects.filter(session=session, player=player).exists()
    reservations = _drop_reservations(Reservation.objects.filter(session=session, player=player), now)
    _mark_expired_invites(Invite.objects.filter(session=session, player=player), now)
    invites = Invite.objects.filter(session=session, player=player, state=InviteState.PENDING).update(
        state=InviteState.REVOKED, date_modified=now
    )
    if not (is_member or reservations or invites):
        raise Conflict("The player has no membership, reservation or invite here.", code="nothing_to_kick")
    changed: set[str] = set()
    if is_member:
        changed = _remove_member(session, player.id, now)
    if is_member or invites:
        session_commit(session, now=now, fields=changed)
    return session


# --- invites --------------------------------------------------------------------------------


def _expire_stale_invites(session: GameSession, now: datetime) -> None:
    """Free the one-pending-invite slot of invites past expiresAt (see Invite's constraint)."""
    _mark_expired_invites(Invite.objects.filter(session=session), now)


def _invite(
    session: GameSession, actor, player: Player, expires_at: datetime | None, now: datetime, *, quota: bool = False
) -> Invite:
    """Checks in the API's order: 400 (expiresAt), then 409 (closed, member, already invited,
    and with `quota` the session's pending invites; `_set_invited` checks that for its list)."""
    if expires_at is not None and expires_at <= now:
        message = "expiresAt must be in the future."
        raise InvalidInput(message, errors=[field_error("expiresAt", message, "in_past")])
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    if Membership.objects.filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} is already a member.", code="already_member")
    if Invite.objects.pending(now).filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} already has a pending invite.", code="already_invited")
    if quota and settings.QUOTA_PENDING_INVITES_PER_SESSION and not permissions.is_operator(actor):
        check_pending_invites_quota(Invite.objects.pending(now).filter(session=session).count() + 1)
    return Invite.objects.create(
        session=session,
        player=player,
        inviting_player_id=actor.id,
        expires_at=expires_at,
        date_created=now,
        date_modified=now,
    )


def _set_invited(session: GameSession, actor, players: list[Player], now: datetime) -> bool:
    """`invited` on create/update sets the whole list (resolved by `_players_by_uid`): new
    players are invited, pending invites left out are revoked. Returns whether anything changed."""
    _expire_stale_invites(session, now)
    wanted = {player.id: player for player in players}
    pending = {i.player_id: i for i in Invite.objects.filter(session=session, state=InviteState.PENDING)}
    if not permissions.is_operator(actor):
        check_pending_invites_quota(len(wanted))  # the list is what stays pending
    changed = False
    for player_id, invite in pending.items():
        if player_id not in wanted:
            invite.state = InviteState.REVOKED
            invite.date_modified = now
            invite.save(update_fields=["state", "date_modified"])
            changed = True
    for player_id, player in wanted.items():
        if player_id not in pending:
            _invite(session, actor, player, None, now)
            changed = True
    return changed


@transaction.atomic
def invite_create(*, session_id: int, actor, player_uid: Any, expires_at: datetime | None = None) -> Invite:
    """The host (or session:*) invites a player: 400 unknown, 409 member or already invited."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = _player_by_uid(player_uid, "player")
    _expire_stale_invites(session, now)
    invite = _invite(session, actor, player, expires_at, now, quota=True)
    session_commit(session, now=now)
    return invite


def _lock_invite(invite_id: int) -> tuple[Invite, GameSession]:
    invite = Invite.objects.filter(pk=invite_id).only("session_id").first()
    if invite is None:
        raise NotFound("No such invite.", code="invite_not_found")
    session = _lock(invite.session_id)
    invite = Invite.objects.select_for_update().get(pk=invite_id)
    return invite, session


def _require_pending(invite: Invite, now: datetime) -> None:
    state = InviteState.EXPIRED if invite.state == InviteState.PENDING and not invite.is_pending(now) else invite.state
    if state != InviteState.PENDING:
        raise Conflict(f"The invite is {state}.", code="invite_not_pending", state=state)


@transaction.atomic
def invite_accept(*, invite_id: int, actor) -> Invite:
    """The invited player joins: no password, within capacity, only an open session."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    if invite.player_id != actor.id:
        raise NotFound("No such invite.", code="invite_not_found")
    _require_pending(invite, now)
    session_join(session_id=session.pk, actor=actor, via_invite=True)
    invite.refresh_from_db()
    return invite


@transaction.atomic
def invite_decline(*, invite_id: int, actor) -> Invite:
    """The invited player turns a pending invite down."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    if invite.player_id != actor.id:
        raise NotFound("No such invite.", code="invite_not_found")
    _settle(session, now)
    _require_pending(invite, now)
    invite.state = InviteState.DECLINED
    invite.date_modified = now
    invite.save(update_fields=["state", "date_modified"])
    session_commit(session, now=now)
    return invite


@transaction.atomic
def invite_revoke(*, invite_id: int, actor) -> Invite:
    """The session's current host (or session:*) revokes a pending invite."""
    now = timezone.now()
    invite, session = _lock_invite(invite_id)
    permissions.authorize_session_manage(actor, session)
    _settle(session, now)
    _require_pending(invite, now)
    invite.state = InviteState.REVOKED
    invite.date_modified = now
    invite.save(update_fields=["state", "date_modified"])
    session_commit(session, now=now)
    return invite


# --- reservations ---------------------------------------------------------------------------


@transaction.atomic
def reservation_create(*, session_id: int, actor, player_uid: Any, expires_at: datetime | None = None) -> Reservation:
    """Hold a place for a player (host or session:*). Counts against capacity until used,
    cancelled or expired; does not change the session document."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = _player_by_uid(player_uid, "player")
    if expires_at is None:
        expires_at = now + timedelta(seconds=settings.RESERVATION_TTL)
    elif expires_at <= now:
        message = "expiresAt must be in the future."
        raise InvalidInput(message, errors=[field_error("expiresAt", message, "in_past")])
    if session.status == S.CLOSED or session.status == S.CLOSING:
        raise Conflict(f"The session is {session.status}.", code="not_joinable", status=session.status)
    if Membership.objects.filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} is already a member.", code="already_member")
    if Reservation.objects.active(now).filter(session=session, player=player).exists():
        raise Conflict(f"{player.username} already holds a reservation.", code="already_reserved")
    capacity = session.capacity
    if capacity is not None:
        taken = Membership.objects.filter(session=session).count()
        taken += Reservation.objects.active(now).filter(session=session).count()
        if taken >= capacity:
            raise Conflict("The session is full.", code="session_full")
    # The player's expired reservation here (not yet swept) gives way to the new one.
    _drop_reservations(Reservation.objects.filter(session=session, player=player), now)
    touch_player_views({str(player.uid): now})
    return Reservation.objects.create(
        session=session, player=player, created_by_id=actor.id, expires_at=expires_at, date_created=now
    )


@transaction.atomic
def reservation_cancel(*, reservation_id: int, session_id: int, actor) -> Reservation:
    """The host, session:* or the reserved player cancels an active reservation (an expired
    one is gone already: 404). Returns it, as it was."""
    now = timezone.now()
    session = _lock(session_id)
    _settle(session, now)
    reservation = (
        Reservation.objects.active(now)
        .filter(pk=reservation_id, session=session)
        .select_related("session", "player")
        .first()
    )
    if reservation is None:
        raise NotFound("No such reservation.", code="reservation_not_found")
    if reservation.player_id != actor.id:
        permissions.authorize_session_manage(actor, session)
    _drop_reservations(Reservation.objects.filter(pk=reservation.pk), now)
    return reservation
