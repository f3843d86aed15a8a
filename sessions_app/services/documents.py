"""What every session write shares (internal to this package): the session row's lock, the
time-driven close it settles first, the document it re-renders and commits, and the stamps
of the players' sessions views it raises. Also player lookups by uid for the workflows.

A write runs in one transaction: `lock_session` locks the session row, `settle` records a
close that is due (not a write: `version` does not move), the workflow changes the rows that
hang on the session, and `session_commit` re-renders `users`, `teams` and `invited` (three
queries) and bumps `version` by exactly one. The hot writes (join, leave) change the rendered
members in memory instead, under the same lock, and commit them without a re-render
(`before`, `render=False`); so does an update that moves no member, team or invite.

The locked row carries its host's uid (`lock_session`), so a service that vouches for the
instance (`vouch`) lets the API answer from it instead of reading the row again.

Lock order: the session row first (`lock_session`; the host's player row it joins for the
uid is read, not locked), then the rows that hang on it (teams, members, invites,
reservations, join-password failures), then the players' view stamps (PlayerSessionsStamp),
which `touch_player_views` upserts in uid order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import F, Model, QuerySet
from django.utils import timezone

from players_app.models import Player
from sessions_project.errors import InvalidInput, NotFound, field_error
from sessions_project.prepared import Parameter, PreparedInstances, update_fields
from sessions_project.times import iso

from ..event_models import EventType, SessionEvent
from ..models import (
    LIVE_STATUSES,
    GameSession,
    Invite,
    InviteState,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    SessionStatus,
    Team,
    Visibility,
)
from . import events

if TYPE_CHECKING:
    from ..permissions import Actor

S = SessionStatus


# The attribute a locked instance carries its host's uid in (as read), and the one a service
# sets (`vouch`) when the instance is what the database holds after its write.
LOCKED_HOST_UID = "locked_host_uid"
VOUCHED_HOST_UID = "vouched_host_uid"


def _locked(**lookup: Any) -> QuerySet[GameSession]:
    return (
        GameSession.objects.select_for_update(of=("self",))
        .annotate(**{LOCKED_HOST_UID: F("host__uid")})
        .filter(**lookup)
        .order_by()
    )


# The locked read of every write, compiled once (see PreparedRows: building and compiling this
# query cost more than running it).
LOCKED_BY_ID = PreparedInstances(
    lambda pk: _locked(pk=pk), Parameter.for_field(GameSession._meta.get_field("id"), -101, -102)
)
LOCKED_BY_UID = PreparedInstances(
    lambda uid: _locked(uid=uid),
    Parameter.for_field(GameSession._meta.get_field("uid"), uuid.UUID(int=1), uuid.UUID(int=2)),
)


def lock_session(session_id: int | None = None, *, uid: uuid.UUID | None = None) -> GameSession:
    """The session row (by pk, or by uid), locked for the rest of the transaction, with its
    host's uid in LOCKED_HOST_UID (a join to the player row, which is not locked: `of`)."""
    found = LOCKED_BY_ID.instances(session_id) if uid is None else LOCKED_BY_UID.instances(uid)
    if not found:
        raise NotFound("No such session.", code="session_not_found")
    return found[0]


def locked_host_uid(session: GameSession) -> Any:
    """The host's uid as `lock_session` read it (the host may have changed since: compare ids)."""
    return getattr(session, LOCKED_HOST_UID)


def vouch(session: GameSession, host_uid: Any) -> None:
    """The service's word that this instance holds the row as its write left it, and that
    `host_uid` is its host's uid: the response is built from it, with no read. Not for a write
    that stored JSON built afresh (the request's `data`, or re-rendered teams): PostgreSQL's
    jsonb would give it back normalised (keys reordered, numbers reformatted)."""
    setattr(session, VOUCHED_HOST_UID, (session.host_id, host_uid))


def player_by_uid(value: Any, field: str) -> Player:
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


def players_by_uid(values: Iterable[Any], field: str) -> list[Player]:
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


def settle(
    session: GameSession,
    now: datetime,
    touches: dict[str, datetime] | None = None,
    made: list[SessionEvent] | None = None,
) -> bool:
    """Record a time-driven close that is due (not a write: `version` does not move), with
    its `session.closed` event by the system (or gathered in `made`, for the caller to write
    with the batch's). Its entries left the players' views at the deadline: their stamps are
    raised to it, or gathered in `touches` for the caller to write once (touch_player_views)."""
    due = session.due_at()
    if session.status in LIVE_STATUSES and due is not None and due <= now:
        leaving = leaving_times([session], now)
        if touches is None:
            touch_player_views(leaving)
        else:
            for player_uid, at in leaving.items():
                raise_time(touches, player_uid, at)
        session.status = S.CLOSED
        session.closed_at = due
        session.save(update_fields=["status", "closed_at"])
        reason = "closesAt" if session.closes_at is not None and session.closes_at <= now else "idle"
        data = {"reason": reason, "closedAt": iso(due)}
        closed = events.event(session, EventType.SESSION_CLOSED, actor=None, at=now, version=None, data=data)
        if made is None:
            events.record([closed])
        else:
            made.append(closed)
        return True
    return False


def refresh_idle_deadline(session: GameSession, now: datetime) -> None:
    session.last_activity_at = now
    if session.idle_timeout > 0 and session.status in LIVE_STATUSES:
        session.idle_deadline = now + timedelta(seconds=session.idle_timeout)
    else:
        session.idle_deadline = None


def render_documents(session: GameSession) -> None:
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


def session_commit(
    session: GameSession,
    *,
    now: datetime | None = None,
    fields: Iterable[str] = (),
    before: tuple[set[str], set[str]] | None = None,
    render: bool = True,
    logged: Callable[[], Iterable[SessionEvent]] | None = None,
) -> None:
    """Save a change to the session document and bump `version` by one. The rendered members
    are re-rendered from the tables, unless the caller changed them in memory already or
    changed none of the rows they show (`render=False`). `before`: the members and invitees
    they showed before the change (whose views to stamp), when the caller changed them in
    memory first; by default, what they show now. `logged`: the change's events, built once
    the version moved, recorded with the row's update in one statement (`events.record`)."""
    now = now or timezone.now()
    if before is None:
        before = (set(session.users_doc), invited_uids(session.invites_doc, now))
    if render:
        render_documents(session)
    _touch_changed_views(session, before, set(fields), now)
    session.version += 1
    session.date_modified = now
    refresh_idle_deadline(session, now)
    saved = {
        *fields,
        "users_doc",
        "teams_doc",
        "invites_doc",
        "version",
        "date_modified",
        "last_activity_at",
        "idle_deadline",
    }
    if logged is None:
        update_fields(session, saved)  # save(update_fields=...), compiled once per field set
    else:
        events.record(logged(), saving=(session, saved))


# --- players' sessions views (seed 003) ------------------------------------------------------
# A player's view shows the live sessions it is a member of, invited to (pending, unexpired) or
# holds an active reservation in. Writes that change a view raise the player's stamp (the
# view's lastUpdatedTimestamp); see PlayerSessionsStamp and sessions_app/reads.py.

STAMP_BATCH = 400  # rows per upsert: two parameters each, under SQLite's oldest limit of 999


# The session columns that date an entry's leaving by time (see _left_at).
SESSION_CLOCK = ("session__status", "session__closes_at", "session__idle_deadline")


def invited_uids(invites_doc: list[dict[str, Any]], now: datetime) -> set[str]:
    now_iso = iso(now)
    return {i["uid"] for i in invites_doc if i["expiresAt"] is None or i["expiresAt"] > now_iso}


def _left_at(
    now: datetime, expires_at: datetime | None, status: str, closes_at: datetime | None, idle_deadline: datetime | None
) -> datetime | None:
    """When an invite or reservation leaves (or left) its player's view, if it goes now: now,
    or earlier if it expired or its session passed a deadline first. None for a session
    already recorded as closed: its entries left the views when it closed (stamped then)."""
    if status == S.CLOSED:
        return None
    return min(t for t in (now, expires_at, closes_at, idle_deadline) if t is not None)


def raise_time(times: dict[str, datetime], player_uid: Any, at: datetime) -> None:
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
                f"ELSE {table}.changed_at END, "
                # Every touch moves the generation, even one that leaves changed_at as it was:
                # it is what voids the view the row remembers (sessions_app.reads).
                f"generation = {table}.generation + 1",
                params,
            )


def leaving_times(sessions: Iterable[GameSession], now: datetime) -> dict[str, datetime]:
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
        raise_time(times, player_uid, cutoffs[session_id])
    entries = [
        *Invite.objects.filter(
            session_id__in=cutoffs, state__in=(InviteState.PENDING, InviteState.EXPIRED)
        ).values_list("session_id", "player__uid", "expires_at"),
        *Reservation.objects.filter(session_id__in=cutoffs).values_list("session_id", "player__uid", "expires_at"),
    ]
    for session_id, player_uid, expires_at in entries:
        cutoff = cutoffs[session_id]
        raise_time(times, player_uid, min(cutoff, expires_at) if expires_at is not None else cutoff)
    return times


def _touch_changed_views(
    session: GameSession, before: tuple[set[str], set[str]], fields: set[str], now: datetime
) -> None:
    """Raise the stamps of the players whose view this commit changes (after re-rendering)."""
    users, invited = set(session.users_doc), invited_uids(session.invites_doc, now)
    changed = (before[0] ^ users) | (before[1] ^ invited)
    times = dict.fromkeys(changed, now)
    if session.status == S.CLOSED:
        if "status" not in fields:
            return  # closed before this write: it was in no view already
        # Closed by this write: everything it showed leaves the views.
        for player_uid, at in leaving_times([session], now).items():
            raise_time(times, player_uid, at)
    elif "type" in fields:
        # The session moves to another group in every view that shows it.
        holders = Reservation.objects.active(now).filter(session=session).values_list("player__uid", flat=True)
        times.update(dict.fromkeys({*users, *invited, *map(str, holders)}, now))
    touch_player_views(times)


def hold_place(session: GameSession, player_uid: str, expires_at: datetime) -> None:
    """Add a reservation row to the locked session's `reservations_doc` (its holder's earlier
    entry, deleted with its row, goes) and save it: freePlaces is read from the row."""
    session.reservations_doc = [
        *(held for held in session.reservations_doc if held["uid"] != player_uid),
        {"uid": player_uid, "expiresAt": iso(expires_at)},
    ]
    session.save(update_fields=["reservations_doc"])


def _forget_held(gone: dict[int, set[str]], session: GameSession | None) -> None:
    """Take deleted reservation rows (holders' uids by session id) out of their sessions'
    `reservations_doc`, in the database and in `session` (the caller's locked instance)."""
    if session is not None and session.pk in gone:
        session.reservations_doc = [h for h in session.reservations_doc if h["uid"] not in gone[session.pk]]
    rows = GameSession.objects.filter(pk__in=gone).order_by("pk").values_list("pk", "reservations_doc")
    changed = [GameSession(pk=pk, reservations_doc=[h for h in doc if h["uid"] not in gone[pk]]) for pk, doc in rows]
    GameSession.objects.bulk_update(changed, ["reservations_doc"])


def drop_reservations(
    queryset: QuerySet[Reservation],
    now: datetime,
    *,
    cancelled_by: Actor | None = None,
    cancel: bool = False,
    session: GameSession | None = None,
) -> int:
    """Delete reservations; an active one leaves its holder's view now, an expired one left it
    when it expired. Returns how many active ones were deleted.

    Events: `reservation.expired` for each expired row this call deleted (a concurrent call
    that deleted it first records it instead: the DELETE says which rows were this call's),
    and with `cancel`, `reservation.cancelled` by `cancelled_by` for each active one."""
    rows = list(
        queryset.values_list(
            "player__uid", "expires_at", *SESSION_CLOCK, "pk", "session__uid", "session__visibility", "session_id"
        )
    )
    if not rows:
        return 0
    times: dict[str, datetime] = {}
    for player_uid, expires_at, *session_clock, _, _, _, _ in rows:
        left = _left_at(now, expires_at, *session_clock)
        if left is not None:
            raise_time(times, player_uid, left)
    touch_player_views(times)
    deleted = _delete_returning_ids(Reservation, [row[5] for row in rows])
    gone: dict[int, set[str]] = {}
    for row in rows:
        if row[5] in deleted:
            gone.setdefault(row[8], set()).add(str(row[0]))
    _forget_held(gone, session)
    made: list[SessionEvent] = []
    active = 0
    for player_uid, expires_at, _, _, _, pk, session_uid, visibility, _ in rows:
        if pk not in deleted:
            continue
        if expires_at > now:
            active += 1
            if not cancel:
                continue
            kind, actor = EventType.RESERVATION_CANCELLED, cancelled_by
        else:
            kind, actor = EventType.RESERVATION_EXPIRED, None
        made.append(
            events.build(
                kind,
                session_uid=session_uid,
                private=visibility == Visibility.PRIVATE,
                actor=actor,
                at=now,
                player_uid=player_uid,
                data={"reservationId": pk, "expiresAt": iso(expires_at)},
            )
        )
    events.record(made)
    return active


def _delete_returning_ids(model: type[Model], pks: list[int]) -> set[int]:
    """Delete rows by pk (a model nothing cascades from) in one statement; the pks it deleted."""
    if not pks:
        return set()
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(str(model._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(pks))}) RETURNING {pk}", pks)
        return {row[0] for row in cursor.fetchall()}


def mark_expired_invites(queryset: QuerySet[Invite], now: datetime) -> int:
    """Mark pending invites past expiresAt as expired, with an `invite.expired` event (by the
    system) for each. No stamp moves: the row keeps dating the expiry (the view reads expired
    rows of live sessions, and leaving_times records them when their session closes or goes).

    One UPDATE that returns the rows it changed, with what their events need: an invite
    another transaction expired first fails the outer condition (re-checked after its lock,
    on PostgreSQL), so each expiry is recorded exactly once. Returns how many."""
    due = queryset.filter(state=InviteState.PENDING, expires_at__lte=now).order_by().values("pk")
    sub_sql, sub_params = due.query.sql_with_params()
    ops = connection.ops
    invite = ops.quote_name(Invite._meta.db_table)
    player = ops.quote_name(Player._meta.db_table)
    session = ops.quote_name(GameSession._meta.db_table)
    state = Invite._meta.get_field("state")
    expires = Invite._meta.get_field("expires_at")
    at = expires.get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {invite} SET state = %s, date_modified = %s"
            f" WHERE state = %s AND expires_at <= %s AND id IN ({sub_sql})"
            f" RETURNING id, expires_at,"
            f" (SELECT uid FROM {player} WHERE {player}.id = {invite}.player_id),"
            f" (SELECT uid FROM {session} WHERE {session}.id = {invite}.session_id),"
            f" (SELECT visibility FROM {session} WHERE {session}.id = {invite}.session_id)",
            [
                state.get_db_prep_value(InviteState.EXPIRED.value, connection),
                at,
                InviteState.PENDING.value,
                at,
                *sub_params,
            ],
        )
        rows = cursor.fetchall()
    uid_field = Player._meta.get_field("uid")
    expires_col = expires.cached_col
    expires_converters = ops.get_db_converters(expires_col) + expires_col.get_db_converters(connection)
    made = []
    for pk, expires_at, player_uid, session_uid, visibility in sorted(rows, key=lambda row: row[0]):
        for converter in expires_converters:
            expires_at = converter(expires_at, expires_col, connection)
        made.append(
            events.build(
                EventType.INVITE_EXPIRED,
                session_uid=uid_field.to_python(session_uid),
                private=visibility == Visibility.PRIVATE,
                actor=None,
                at=now,
                player_uid=uid_field.to_python(player_uid),
                data={"inviteId": pk, "expiresAt": iso(expires_at)},
            )
        )
    events.record(made)
    return len(made)
