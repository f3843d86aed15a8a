"""Reading the session event log as a caller may see it: one session's events, and a player's
feed. The REST pages (`api/event_views.py`), the live routes (`live/`) and their replays all
read through here, so each rule of who sees what is written once.

Who sees what: whoever may see a session (the rule of GET /sessions/{uid}) sees its events,
except the invite and reservation events of a session that was private when they happened
(`SessionEvent.restricted`): those are its host's, the player's concerned and session:*
accounts'. The events of a deleted session stay readable by session:* accounts until purged.
A player's feed: every event of the sessions it is a member of or hosts (but other players'
restricted ones in sessions it does not host), and every event naming it as `playerUid`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sessions_project.errors import NotFound
from sessions_project.times import iso

from . import permissions
from .event_models import SessionEvent
from .models import GameSession, Membership, row_visible_to

if TYPE_CHECKING:
    from .permissions import Actor

EVENT_COLUMNS = ("id", "type", "session_uid", "version", "actor_uid", "at", "data")
# The session row's columns the visibility rule reads (`row_visible_to`).
ACCESS_COLUMNS = ("id", "visibility", "host_id", "users_doc", "invites_doc")


def event_document(row: dict[str, Any]) -> dict[str, Any]:
    """One event as every route shows it (the events pages, live messages, webhooks)."""
    actor_uid = row["actor_uid"]
    return {
        "id": row["id"],
        "type": row["type"],
        "sessionUid": str(row["session_uid"]),
        "version": row["version"],
        "actorUid": None if actor_uid is None else str(actor_uid),
        "at": iso(row["at"]),
        "data": row["data"],
    }


def not_found() -> NotFound:
    return NotFound("No such session.", code="session_not_found")


def session_access_row(session_uid: uuid.UUID) -> dict[str, Any] | None:
    """The session row `session_access` needs (the REST page reads it its own faster way)."""
    row: dict[str, Any] | None = GameSession.objects.filter(uid=session_uid).values(*ACCESS_COLUMNS).first()
    return row


def session_access(actor: Actor, row: dict[str, Any] | None) -> bool:
    """Whether the caller hosts the session, after making sure it may see its events: 404
    `session_not_found` for a session it may not see; a session that is gone, for session:*
    accounts, is left to `deleted_session_check` (its events stay theirs until purged)."""
    if row is None:
        if not permissions.is_operator(actor):
            raise not_found()
        return False
    if not row_visible_to(actor, row):
        raise not_found()
    return row["host_id"] is not None and row["host_id"] == actor.id


def deleted_session_check(session_uid: uuid.UUID, page: list[Any]) -> None:
    """For a session that is gone: 404 unless it left events (an empty page asks the log)."""
    if not page and not SessionEvent.objects.filter(session_uid=session_uid).exists():
        raise not_found()


def session_events(
    actor: Actor, session_uid: uuid.UUID, *, hosts: bool, after: int, limit: int
) -> list[dict[str, Any]]:
    """One page of a session's events the caller may see (it may see the session: see
    `session_access`), with an id above `after`, oldest first."""
    events = (
        SessionEvent.objects.filter(session_uid=session_uid, id__gt=after)
        .seen_in_session_by(actor, hosts=hosts)
        .order_by("id")
        .values(*EVENT_COLUMNS)[:limit]
    )
    return [event_document(event) for event in events]


def player_events(actor: Actor, *, after: int, limit: int) -> list[dict[str, Any]]:
    """One page of the caller's feed with an id above `after`, oldest first."""
    events = SessionEvent.objects.feed_of(actor.id, actor.uid).filter(id__gt=after).order_by("id")
    return [event_document(event) for event in events.values(*EVENT_COLUMNS)[:limit]]


def player_session_uids(actor: Actor) -> set[uuid.UUID]:
    """The sessions whose events make up the caller's feed now: those it is in or hosts."""
    member_of = Membership.objects.filter(player_id=actor.id).order_by().values_list("session__uid", flat=True)
    hosted = GameSession.objects.filter(host_id=actor.id).order_by().values_list("uid", flat=True)
    return set(member_of.union(hosted))
