"""The session event log: the one writer every workflow records its changes through.

A workflow builds its events (`event`) after its change, in its own transaction and under
the session row's lock, and writes them with one `record` (one INSERT, whatever the number):
an event exists exactly when its change was committed, and a rolled-back change leaves none.
Ids are in commit order across the whole log, so a reader walking it by id (`?after=`, a
live stream resuming) never skips one: on PostgreSQL a trigger takes an advisory lock before
each INSERT draws its ids, held until the commit (migration 0009_event_commit_order); SQLite
lets one transaction write at a time.

`version` is the session's after the change, or None for a change that did not move it
(a close or an expiry by time, a reservation, a score, a delete). `actor` None is the system
(time, the sweeper). `record` also hands what it wrote to live delivery
(`sessions_app.live.publish`), which wakes listeners up once the transaction has committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from sessions_project import metrics
from sessions_project.prepared import insert_rows, update_and_insert
from sessions_project.times import iso

from ..event_models import RESTRICTED_PREFIXES, EventType, SessionEvent
from ..live.publish import publish_on_commit
from ..models import GameSession, Visibility

if TYPE_CHECKING:
    from ..permissions import Actor

# The session members `session.updated` reports under `changes`, by model field: the API's
# names. A password shows only as whether there is one (`hasPassword`).
CHANGE_NAMES = {
    "data": "data",
    "visibility": "visibility",
    "server_uid": "serverUid",
    "type": "type",
    "name": "name",
    "desc": "desc",
    "highlight": "highlight",
    "workspace_id": "workspaceId",
    "password_hash": "hasPassword",
    "idle_timeout": "idleTimeout",
    "host": "hostUid",
    "num_teams": "numTeams",
    "team_size": "teamSize",
    "status": "status",
    "closed_at": "closedAt",
}


def _uid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def text_uid(value: Any) -> str | None:
    """A uid as the API writes it (lowercase text), for `data` members."""
    uid = _uid(value)
    return None if uid is None else str(uid)


def event(
    session: GameSession,
    type: EventType,
    *,
    actor: Actor | None,
    at: datetime | None = None,
    version: int | None = -1,
    player_uid: Any = None,
    data: dict[str, Any] | None = None,
) -> SessionEvent:
    """An unsaved event of this session (write it with `record`). `version` -1: the session's
    current one (call after its commit); None: the change did not move it. `player_uid`: the
    player concerned, also written as `data.playerUid`."""
    return build(
        type,
        session_uid=session.uid,
        private=session.visibility == Visibility.PRIVATE,
        actor=actor,
        at=at,
        version=session.version if version == -1 else version,
        player_uid=player_uid,
        data=data,
    )


def build(
    type: EventType,
    *,
    session_uid: Any,
    private: bool,
    actor: Actor | None,
    at: datetime | None = None,
    version: int | None = None,
    player_uid: Any = None,
    data: dict[str, Any] | None = None,
) -> SessionEvent:
    """`event` for a session known by its uid and visibility only (rows changed in bulk)."""
    payload = dict(data or {})
    if player_uid is not None:
        payload = {"playerUid": text_uid(player_uid), **payload}
    return SessionEvent(
        type=type,
        session_uid=uuid.UUID(str(session_uid)),
        version=version,
        actor_uid=None if actor is None else _uid(actor.uid),
        player_uid=_uid(player_uid),
        restricted=type.startswith(RESTRICTED_PREFIXES) and private,
        at=at or timezone.now(),
        data=payload,
    )


def record(events: Iterable[SessionEvent], *, saving: tuple[GameSession, set[str]] | None = None) -> list[SessionEvent]:
    """Write events in one INSERT (none for none), in the caller's transaction: the one
    place every event is written through. They are counted (metrics: events by type, joins,
    leaves) once committed: a rolled-back change counts nothing. `saving`: the session row's
    update (the instance, its fields) that goes in the same statement
    (`documents.session_commit`)."""
    batch = list(events)
    if saving is not None:
        update_and_insert(*saving, batch)  # one statement on PostgreSQL
    elif batch:
        insert_rows(batch)  # bulk_create's INSERT, compiled once
    if batch:
        publish_on_commit(batch)
        transaction.on_commit(partial(metrics.count_events, [event.type for event in batch]))
    return batch


def record_one(
    session: GameSession,
    type: EventType,
    *,
    actor: Actor | None,
    at: datetime | None = None,
    version: int | None = -1,
    player_uid: Any = None,
    data: dict[str, Any] | None = None,
) -> SessionEvent:
    """`event` and `record` for a change that makes one event."""
    return record([event(session, type, actor=actor, at=at, version=version, player_uid=player_uid, data=data)])[0]


def session_changes(session: GameSession, fields: Iterable[str], host_uid: Any = None) -> dict[str, Any]:
    """`changes` of `session.updated`: the members among `fields` with their new values."""
    changes: dict[str, Any] = {}
    for name in fields:
        key = CHANGE_NAMES.get(name)
        if key is None:
            continue
        if name == "password_hash":
            changes[key] = session.has_password
        elif name == "host":
            changes[key] = text_uid(host_uid)
        elif name == "server_uid":
            changes[key] = text_uid(session.server_uid)
        elif name == "closed_at":
            changes[key] = iso(session.closed_at)
        else:
            changes[key] = getattr(session, name)
    return dict(sorted(changes.items()))


def removal_events(
    session: GameSession,
    actor: Actor,
    kind: EventType,
    player_uid: str,
    changed: set[str],
    previous_host_uid: Any,
    host_uid: Any,
    now: datetime,
) -> list[SessionEvent]:
    """A leave's or kick's events, after its commit: the member's, then the host hand-over
    or the close the removal made (`changed`: "host", "status")."""
    made = [event(session, kind, actor=actor, at=now, player_uid=player_uid)]
    if "host" in changed:
        made.append(
            event(
                session,
                EventType.HOST_CHANGED,
                actor=actor,
                at=now,
                data={
                    "previousHostUid": text_uid(previous_host_uid),
                    "hostUid": text_uid(host_uid),
                },
            )
        )
    if "status" in changed:
        made.append(
            event(
                session,
                EventType.SESSION_CLOSED,
                actor=actor,
                at=now,
                data={"reason": "empty", "closedAt": iso(session.closed_at)},
            )
        )
    return made


class TeamMove(NamedTuple):
    """A member's change of team (`team` None: no team), for its `member.moved` event."""

    player_uid: Any
    previous_team: int | None
    team: int | None


def move_events(session: GameSession, actor: Actor, moves: list[TeamMove], now: datetime) -> list[SessionEvent]:
    """`member.moved` for each move, after the commit (they carry the new version)."""
    return [
        event(
            session,
            EventType.MEMBER_MOVED,
            actor=actor,
            at=now,
            player_uid=move.player_uid,
            data={"team": move.team, "previousTeam": move.previous_team},
        )
        for move in moves
    ]
