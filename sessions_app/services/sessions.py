"""Sessions as a whole: create, update, delete and truncate, the document's ETag, and the
live-session quota of a host (QUOTA_LIVE_SESSIONS_PER_HOST; 0: none, session:* exempt).

Rendering and committing the document is `documents.session_commit`; teams and join
passwords are `membership`'s, the `invited` list `invites`', status transitions `lifecycle`'s.

Lock order: create locks the creator's player row (live-session quota, when it applies),
then writes the new session's rows, then the players' view stamps. Update locks the session
row (`documents.lock_session`), then a new host's player row (quota), then its teams and
members (resizing), then invites, then the view stamps. Delete and truncate lock the session
rows (truncate in pk order), raise the view stamps, then delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from players_app.models import Player
from sessions_project.conditional import if_match_passes
from sessions_project.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed, field_error
from sessions_project.prepared import insert_rows
from sessions_project.times import iso

from .. import permissions
from ..codes import JOIN_CODE_ATTEMPTS, is_join_code_collision
from ..event_models import EventType, SessionEvent
from ..models import LIVE_STATUSES, GameSession, Membership, SessionStatus, Team
from . import documents, events, invites, join_passwords, lifecycle, membership

if TYPE_CHECKING:
    from ..permissions import Actor

S = SessionStatus


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
        raise Conflict(f"A player may host at most {limit} live sessions at once.", code="quota_exceeded")


CREATE_STATUSES = (S.OPEN, S.IN_PROGRESS)


def session_create(
    *, actor: Actor, values: dict[str, Any], counts_as_live: bool = True, creator_team: int | None = None
) -> GameSession:
    """Create a session; the creator (unless a session:* account naming others) is its first member,
    in team `creator_team` when given (400 if the session has no such team), else the first.
    `counts_as_live=False` only for a session closed in the same transaction (score import):
    it is never live, so it takes nothing from the host's quota.

    The new session's join code is drawn at random; one that a live session holds already is
    refused by the constraint, and the whole create (its own transaction, or savepoint inside
    the caller's) is rolled back and made again with a new code: no query is spent on a check."""
    for attempt in range(1, JOIN_CODE_ATTEMPTS + 1):
        try:
            return _session_create(actor=actor, values=values, counts_as_live=counts_as_live, creator_team=creator_team)
        except IntegrityError as error:
            if attempt == JOIN_CODE_ATTEMPTS or not is_join_code_collision(error):
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _session_create(
    *, actor: Actor, values: dict[str, Any], counts_as_live: bool, creator_team: int | None
) -> GameSession:
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
    members: list[tuple[int, str]]  # (id, uid) in joining order
    membership.validate_team_index(values.get("num_teams", 0), creator_team)
    if users is None:
        members = [(actor.id, str(uuid.UUID(str(actor.uid))))]
    else:
        members = [(player.id, str(player.uid)) for player in documents.players_by_uid(users, "users")]
    member_ids = [player_id for player_id, _ in members]

    host_id: int | None = actor.id
    host_uid: Any = uuid.UUID(str(actor.uid))
    if "host_uid" in values:
        host_value = values["host_uid"]
        if host_value is None or str(host_value) != actor_uid:
            if not operator:
                raise Forbidden("Only session:* accounts may set hostUid to someone else.", code="host_forbidden")
            host = None if host_value is None else documents.player_by_uid(host_value, "hostUid")
            host_id, host_uid = (None, None) if host is None else (host.id, host.uid)
    if "server_uid" in values:
        permissions.authorize_server_uid(actor, None, values["server_uid"])
    # Resolved before any 409 below: an unknown invited player is a malformed request (400).
    invited = documents.players_by_uid(values.get("invited") or (), "invited")

    session = GameSession(
        creator_id=actor.id,
        host_id=host_id,
        status=status,
        data=values.get("data", {}),
        server_uid=values.get("server_uid"),
        visibility=values.get("visibility", "public"),
        num_teams=values.get("num_teams", 0),
        team_size=values.get("team_size", 0),
        password_hash=join_passwords.hash_join_password(values.get("password") or ""),
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
    documents.refresh_idle_deadline(session, now)
    # The rendered members are known before the insert (nothing else hangs on a new session
    # but its invites): the row goes in once, with them.
    team_players: list[list[str]] = [[] for _ in range(session.num_teams)]
    counts = dict.fromkeys(range(session.num_teams), 0)
    placement: list[int | None] = []
    for player_id, player_uid in members:
        if not counts:
            placement.append(None)
            continue
        index = min(counts, key=lambda i: (counts[i], i))
        if creator_team is not None and player_id == actor.id:
            index = creator_team
        counts[index] += 1
        team_players[index].append(player_uid)
        placement.append(index)
    session.users_doc = [player_uid for _, player_uid in members]
    session.teams_doc = [
        {"index": i, "name": membership.team_name(i), "players": team_players[i]} for i in range(session.num_teams)
    ]
    session.invites_doc = []
    # save() and bulk_create()'s INSERTs, built once per shape (sessions_project.prepared).
    insert_rows([session])
    teams = [Team(session=session, index=i, name=membership.team_name(i)) for i in range(session.num_teams)]
    insert_rows(teams)
    memberships = [
        # Distinct join times keep the creation order as the hand-over order.
        Membership(
            session=session,
            player_id=player_id,
            team=None if index is None else teams[index],
            joined_at=now + timedelta(microseconds=offset),
        )
        for offset, (player_id, index) in enumerate(zip(member_ids, placement, strict=True))
    ]
    insert_rows(memberships)
    invite_changes: list[invites.InviteChange] = []
    if invited:
        invite_changes = invites.set_invited(session, actor, invited, now)
        documents.render_documents(session)
        session.save(update_fields=["users_doc", "teams_doc", "invites_doc"])
    created = events.event(
        session,
        EventType.SESSION_CREATED,
        actor=actor,
        at=now,
        data={
            "hostUid": events.text_uid(host_uid),
            "status": session.status,
            "visibility": session.visibility,
            "users": list(session.users_doc),
        },
    )
    events.record([created, *invites.invite_events(session, actor, invite_changes, now)])
    documents.touch_player_views(
        dict.fromkeys([*session.users_doc, *documents.invited_uids(session.invites_doc, now)], now)
    )
    if not session.data and not session.teams_doc and not invited:
        # Nothing stored was built afresh as JSON that the database could normalise (jsonb
        # reorders keys): the response is the instance.
        documents.vouch(session, host_uid)
    return session


def etag_for(session_uid: uuid.UUID | str, version: int) -> str:
    """Strong ETag of a session document: it changes exactly when `version` does."""
    return f'"{session_uid}-{version}"'


SIMPLE_FIELDS = ("data", "visibility", "server_uid", "type", "name", "desc", "highlight", "workspace_id")


class _Unchanged(Enum):
    HOST = "unchanged"


_UNCHANGED: Final = _Unchanged.HOST


def _host_change(
    session: GameSession, actor: Actor, values: dict[str, Any]
) -> Player | None | Literal[_Unchanged.HOST]:
    """The host an update names if it is not the current one: None (403 without session:*), or
    a member (400 otherwise, unless session:*). `_UNCHANGED` when hostUid is absent or current."""
    if "host_uid" not in values:
        return _UNCHANGED
    host_value = values["host_uid"]
    current = documents.locked_host_uid(session)  # the host is not changed yet
    if (None if host_value is None else str(host_value)) == (None if current is None else str(current)):
        return _UNCHANGED
    if host_value is None:
        permissions.authorize_host_removal(actor)
        return None
    player = documents.player_by_uid(host_value, "hostUid")
    if not permissions.is_operator(actor) and not Membership.objects.filter(session=session, player=player).exists():
        message = "The host can be handed only to a member of the session."
        raise InvalidInput(message, code="host_not_member", errors=[field_error("hostUid", message)])
    return player


@transaction.atomic
def session_update(
    *,
    session_id: int | None = None,
    session_uid: uuid.UUID | None = None,
    actor: Actor,
    values: dict[str, Any],
    expected_version: int | None = None,
    if_match: str | None = None,
    check_visible: bool = False,
    precheck: Callable[[GameSession], None] | None = None,
) -> GameSession:
    """Apply an update (PUT/PATCH or admin) to a session by pk or uid. Only members that
    differ are written; if none differs, nothing changes and `version` stays. Checks, in the
    API's order: visibility (404, with `check_visible`), the caller's `precheck` of the locked
    row (the API's refusals of its body), permission (403), the values that name players
    (400), If-Match (412), version (409 with the current version), then the state rules (409).

    The locked read and the row's update; the rendered members are re-rendered only when
    teams or invites change, and the response can be built from the instance (`vouch`)
    unless `data` was written."""
    now = timezone.now()
    session = documents.lock_session(session_id, uid=session_uid)
    if check_visible and not session.is_visible_to(actor, now):
        raise NotFound("No such session.", code="session_not_found")
    if precheck is not None:
        precheck(session)
    documents.settle(session, now)
    permissions.authorize_session_update(actor, session, set(values) - {"users"})
    if "server_uid" in values:
        permissions.authorize_server_uid(actor, session.server_uid, values["server_uid"])
    new_host = _host_change(session, actor, values)
    if "users" in values and sorted(str(u) for u in values["users"]) != sorted(session.users_doc):
        message = "users changes only through join, leave, kick and invites."
        raise InvalidInput(message, code="read_only", errors=[field_error("users", message, "read_only")])
    invited = documents.players_by_uid(values["invited"], "invited") if "invited" in values else None
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
        if (
            raw
            and not join_passwords.check_join_password(raw, session.password_hash)
            or (not raw and session.password_hash)
        ):
            session.password_hash = join_passwords.hash_join_password(raw)
            changed.add("password_hash")

    if "idle_timeout" in values and values["idle_timeout"] != session.idle_timeout:
        session.idle_timeout = values["idle_timeout"]
        changed.add("idle_timeout")

    if new_host is not _UNCHANGED:
        session.host = new_host
        changed.add("host")

    num_teams = values.get("num_teams", session.num_teams)
    team_size = values.get("team_size", session.team_size)
    moves: list[events.TeamMove] = []
    if (num_teams, team_size) != (session.num_teams, session.team_size):
        moves = membership.resize_teams(session, num_teams, team_size, now)
        session.num_teams, session.team_size = num_teams, team_size
        changed.update({"num_teams", "team_size"})

    if "status" in values and values["status"] != session.status:
        lifecycle.check_transition(session.status, values["status"], "update")
        session.status = values["status"]
        changed.add("status")
        if session.status == S.CLOSED:
            session.closed_at = now
            changed.add("closed_at")
    elif "status" in values:
        lifecycle.check_transition(session.status, values["status"], "update")

    invite_changes: list[invites.InviteChange] = []
    if invited is not None:
        invite_changes = invites.set_invited(session, actor, invited, now)
        if invite_changes:
            changed.add("invites")

    # Only resizing and `invited` change the rows `users`, `teams` and `invited` show.
    rendered = bool(changed & {"num_teams", "invites"})
    host_uid = documents.locked_host_uid(session) if new_host is _UNCHANGED else getattr(new_host, "uid", None)
    if changed:
        documents.session_commit(
            session,
            now=now,
            fields=changed - {"invites"},
            render=rendered,
            logged=lambda: _update_events(session, actor, changed, host_uid, moves, invite_changes, now),
        )
    if not rendered and "data" not in changed:
        documents.vouch(session, host_uid)
    return session


def _update_events(
    session: GameSession,
    actor: Actor,
    changed: set[str],
    host_uid: Any,
    moves: list[events.TeamMove],
    invite_changes: list[invites.InviteChange],
    now: datetime,
) -> list[SessionEvent]:
    """An update's events, after its commit (they carry the new version): `session.updated`
    with the members that changed, then what it did besides (host, teams, invites, close)."""
    changes = events.session_changes(session, changed, host_uid)
    if "invites" in changed:
        changes["invited"] = [invite["uid"] for invite in session.invites_doc]
    made = [events.event(session, EventType.SESSION_UPDATED, actor=actor, at=now, data={"changes": changes})]
    if "host" in changed:
        made.append(
            events.event(
                session,
                EventType.HOST_CHANGED,
                actor=actor,
                at=now,
                data={
                    "previousHostUid": events.text_uid(documents.locked_host_uid(session)),
                    "hostUid": events.text_uid(host_uid),
                },
            )
        )
    made += events.move_events(session, actor, moves, now)
    made += invites.invite_events(session, actor, invite_changes, now)
    if "status" in changed and session.status == S.CLOSED:
        made.append(
            events.event(
                session, EventType.SESSION_CLOSED, actor=actor, at=now, data={"reason": "update", "closedAt": iso(now)}
            )
        )
    return made


@transaction.atomic
def session_delete(*, session_id: int, actor: Actor) -> None:
    """Delete a session and everything on it (host or session:*)."""
    session = documents.lock_session(session_id)
    permissions.authorize_session_manage(actor, session)
    now = timezone.now()
    if session.status in LIVE_STATUSES:
        documents.touch_player_views(documents.leaving_times([session], now))
    events.record_one(session, EventType.SESSION_DELETED, actor=actor, at=now, version=None)
    session.delete()


TRUNCATE_BATCH = 500  # sessions deleted per statement group (their cascades list the ids)


def session_truncate(*, sessions: QuerySet[GameSession] | None = None, actor: Actor | None = None) -> int:
    """Delete these sessions (DELETE /sessions: the caller's visible sessions narrowed by the
    list filters, as /sessions/count counts them), every session when None; returns how many.

    The rows are locked and read first, so exactly the sessions counted (and whose members,
    invitees and reservation holders get their view stamps raised) are the ones deleted, each
    with its `session.deleted` event (by `actor`; None: the system)."""
    now = timezone.now()
    queryset = GameSession.objects.all() if sessions is None else sessions
    with transaction.atomic():
        # of=("self",): a hostUid filter joins the player table, whose rows must not be locked.
        doomed = list(
            queryset.order_by("pk")
            .select_for_update(of=("self",))
            .only("pk", "uid", "visibility", "status", "closes_at", "idle_deadline")
        )
        live = [session for session in doomed if session.status in LIVE_STATUSES]
        touches: dict[str, datetime] = {}
        for start in range(0, len(live), documents.STAMP_BATCH):
            for player_uid, at in documents.leaving_times(live[start : start + documents.STAMP_BATCH], now).items():
                documents.raise_time(touches, player_uid, at)
        documents.touch_player_views(touches)
        events.record(
            events.event(session, EventType.SESSION_DELETED, actor=actor, at=now, version=None) for session in doomed
        )
        for start in range(0, len(doomed), TRUNCATE_BATCH):
            GameSession.objects.filter(pk__in=[s.pk for s in doomed[start : start + TRUNCATE_BATCH]]).delete()
    return len(doomed)
