"""Membership: join (its password checked by `join_passwords`), leave, teams (choosing,
moving, resizing) and kicks, with the host hand-over when the host goes.

Lock order: the session row first (`documents.lock_session`), then the rows that hang on it
(teams, members, reservations, invites) and the players' view stamps
(`documents.touch_player_views`, in uid order).
A join is one transaction under the session row's lock, its password check included: one
session's guesses are judged one at a time, and a failure's record is committed before the
join raises its 403. Join and leave count and change the members in the row's rendered
`users` and `teams` (kept in step with the tables under this lock), not with queries.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count
from django.utils import timezone

from sessions_project import metrics
from sessions_project.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from sessions_project.prepared import statement

from .. import permissions, places
from ..event_models import EventType, SessionEvent
from ..models import (
    GameSession,
    Invite,
    InviteState,
    Membership,
    Reservation,
    SessionStatus,
    Team,
)
from . import documents, events, join_passwords

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from ..permissions import Actor

    class _TeamSize(TypedDict):
        size: int

    # A team with its member count (`_teams_with_counts`).
    CountedTeam = WithAnnotations[Team, _TeamSize]

S = SessionStatus


def _joinable(session: GameSession, status: str | None = None) -> None:
    status = status or session.status
    if status != S.OPEN:
        raise Conflict(
            f"Only an open session can be joined (current status: {status}).",
            code="not_joinable",
            status=status,
        )


def _visible(session: GameSession, actor: Actor, now: datetime) -> None:
    """404 unless the caller may see the session (the API's rule: `row_visible_to` on the
    locked row; only a private session the caller has no tie to costs a query)."""
    if not session.is_visible_to(actor, now):
        raise NotFound("No such session.", code="session_not_found")


def _invited(session: GameSession, actor: Actor, now: datetime) -> bool:
    """A pending, unexpired invite. No query unless the rendered `invited` names the player:
    its expiries are to the millisecond, so the table decides (pending(now))."""
    player_uid = str(actor.uid)
    if not any(invite["uid"] == player_uid for invite in session.invites_doc):
        return False
    return Invite.objects.pending(now).filter(session=session, player_id=actor.id).exists()


def _appendable(session: GameSession, now: datetime) -> bool:
    """Whether a member joining now goes last in `users` (its order is the members' joined_at,
    then id; the new row's id is the highest). `now` is read under the row lock, after every
    join that came before; a creation dates its members up to one microsecond apart each.
    A clock that stood still or went back (a frozen one in tests) re-renders from the table."""
    return now > session.date_modified + timedelta(microseconds=len(session.users_doc))


@metrics.counts_refusals(metrics.JOINS_REFUSED)
def session_join(
    *,
    session_id: int | None = None,
    session_uid: uuid.UUID | None = None,
    actor: Actor,
    password: str | None = None,
    team: int | None = None,
    via_invite: bool = False,
    check_visible: bool = False,
    join_code: str | None = None,
    password_free: bool = False,
) -> GameSession:
    """Join a session (by pk or uid): the password unless the caller holds a reservation or
    invite (or is already in), then within capacity (a reservation's place is the caller's
    own), into the requested team or the smallest one. A repeated join by a member changes
    nothing. `check_visible`: 404 first unless the caller may see the session (the API).
    `join_code`: the code the caller joins by (its stored form), which the locked row must
    still hold while the session is live (404 `code_not_found` otherwise: a rotated code
    stops working at once). `password_free`: a session that needs a password is refused with
    403 `password_required` and nothing recorded (a quick join, which never chooses one).

    One transaction under the session row's lock, with the members counted from its rendered
    `users` and `teams` and its active reservations from its `reservations_doc`: the locked
    read, the membership's insert, the caller's view stamp, the session row's update and the
    event; a reservation used, an invite accepted, a password checked add theirs."""
    refused: Forbidden | None = None
    with transaction.atomic():
        session = documents.lock_session(session_id, uid=session_uid)
        now = timezone.now()  # under the lock: joins are dated in the order they go in
        if check_visible:
            _visible(session, actor, now)
        if join_code is not None and (session.join_code != join_code or session.effective_status(now) == S.CLOSED):
            raise NotFound("No live session has this join code.", code="code_not_found")
        validate_team_index(session.num_teams, team)  # a malformed request (400) before any 409
        # A session that is not open refuses every join with 409 before any password is looked
        # at (issue 5: "every join gets 409"), so guesses on it are neither answered nor counted.
        # (So `settle` would record nothing here: a session due to close is refused first.)
        _joinable(session, session.effective_status(now))
        player_uid = str(actor.uid)
        if player_uid in session.users_doc:
            documents.vouch(session, documents.locked_host_uid(session))
            return session
        # The active reservations from the locked row (`reservations_doc`, kept with their rows
        # under this lock): the rule freePlaces shows, and no query.
        holders = places.active_holders(session.reservations_doc, now)
        reserved = player_uid in holders
        if session.password_hash and not via_invite and not reserved and not _invited(session, actor, now):
            if password_free:
                raise Forbidden("This session needs a password to join.", code="password_required")
            refused = join_passwords.check_password(session, actor, password, now)
        if refused is None:
            _add_member(session, actor, team, now, reserved=reserved, held=len(holders))
    if refused is not None:
        raise refused
    return session


def _add_member(
    session: GameSession, actor: Actor, team: int | None, now: datetime, *, reserved: bool, held: int
) -> None:
    """The join's writes, its members changed in the rendered columns in memory."""
    capacity = session.capacity
    if capacity is not None and not reserved and len(session.users_doc) + held >= capacity:
        raise Conflict("The session is full.", code="session_full")
    sizes = [(t["index"], len(t["players"])) for t in session.teams_doc]
    chosen = _choose_team(session, sizes, team)
    _insert_member(session.pk, actor.id, chosen, now)
    player_uid = str(actor.uid)
    saved: tuple[str, ...] = ()
    if reserved:
        Reservation.objects.filter(session=session, player_id=actor.id).delete()
        # Saved with the session row below (its reservations_doc).
        session.reservations_doc = [h for h in session.reservations_doc if h["uid"] != player_uid]
        saved = ("reservations_doc",)
    before = (set(session.users_doc), documents.invited_uids(session.invites_doc, now))
    accepted = 0
    if any(invite["uid"] == player_uid for invite in session.invites_doc):
        # An invite that had expired stays expired: joining by password does not accept it.
        accepted = (
            Invite.objects.pending(now)
            .filter(session=session, player_id=actor.id)
            .update(state=InviteState.ACCEPTED, date_modified=now)
        )

    def joined() -> list[SessionEvent]:
        made = [
            events.event(
                session, EventType.MEMBER_JOINED, actor=actor, at=now, player_uid=player_uid, data={"team": chosen}
            )
        ]
        if accepted:
            made.append(events.event(session, EventType.INVITE_ACCEPTED, actor=actor, at=now, player_uid=player_uid))
        return made

    if not _appendable(session, now):
        # Re-rendered: the response re-reads it.
        documents.session_commit(session, now=now, fields=saved, logged=joined)
    else:
        session.users_doc.append(player_uid)
        if chosen is not None:
            next(t for t in session.teams_doc if t["index"] == chosen)["players"].append(player_uid)
        if accepted:
            session.invites_doc = [invite for invite in session.invites_doc if invite["uid"] != player_uid]
        documents.session_commit(session, now=now, fields=saved, before=before, render=False, logged=joined)
        documents.vouch(session, documents.locked_host_uid(session))


# A join's and a leave's membership row, written by SQL built once: through the ORM, building
# and compiling these statements cost more than running them (nothing hangs on a membership
# row, so a delete has nothing to cascade to).


def _member_insert_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    members, teams = quote(Membership._meta.db_table), quote(Team._meta.db_table)
    # The team's id by its index, inside the insert: no query of its own (none for no team).
    team_id = f"(SELECT {quote('id')} FROM {teams} WHERE {quote('session_id')} = %s AND {quote('index')} = %s)"
    columns = ", ".join(quote(column) for column in ("session_id", "player_id", "team_id", "joined_at"))
    return f"INSERT INTO {members} ({columns}) VALUES (%s, %s, {team_id}, %s)"


def _insert_member(session_id: int, player_id: int, team_index: int | None, joined_at: datetime) -> None:
    at = Membership._meta.get_field("joined_at").get_db_prep_save(joined_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            statement(("member insert",), _member_insert_sql),
            [session_id, player_id, session_id, team_index, at],
        )


def _member_delete_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    return (
        f"DELETE FROM {quote(Membership._meta.db_table)} WHERE {quote('session_id')} = %s AND {quote('player_id')} = %s"
    )


def _delete_member(session_id: int, player_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement(("member delete",), _member_delete_sql), [session_id, player_id])


def _remove_member(session: GameSession, player_id: int, player_uid: str, now: datetime) -> tuple[set[str], Any]:
    """Take a player out of `users` and its team (the table, and the rendered columns in
    memory: callers take `before` first); hand the host over to the earliest member left, or
    close a hosted session its last member left. Returns the session fields that changed
    besides the rendered members, and the host's uid after it."""
    _delete_member(session.pk, player_id)
    if player_uid in session.users_doc:
        session.users_doc.remove(player_uid)
    for entry in session.teams_doc:
        if player_uid in entry["players"]:
            entry["players"].remove(player_uid)
    changed: set[str] = set()
    host_uid = documents.locked_host_uid(session)
    if session.host_id == player_id and session.users_doc:
        # The earliest member left, by joined_at then id (the order of `users`).
        successor = (
            Membership.objects.filter(session=session)
            .order_by("joined_at", "id")
            .values_list("player_id", "player__uid")
            .first()
        )
        if successor is not None:
            session.host_id, host_uid = successor
            changed.add("host")
    if session.host_id is not None and not session.users_doc:
        # The last member of a hosted session left: it closes and keeps its last host.
        session.status = S.CLOSED
        session.closed_at = now
        changed.update({"status", "closed_at"})
    return changed, host_uid


def session_leave(
    *, session_id: int | None = None, session_uid: uuid.UUID | None = None, actor: Actor, check_visible: bool = False
) -> GameSession:
    """Leave a session (by pk or uid; also while it is closing); 409 for a non-member or a
    closed session. `check_visible`: 404 first unless the caller may see the session (the API).

    The locked read, the membership's delete, the view stamps and the session row's update;
    a host hand-over adds the successor's lookup, the last member's leave the reads of what
    its close takes out of the players' views."""
    with transaction.atomic():
        now = timezone.now()
        session = documents.lock_session(session_id, uid=session_uid)
        if check_visible:
            _visible(session, actor, now)
        documents.settle(session, now)
        if session.status == S.CLOSED:
            raise Conflict("The session is closed.", code="session_closed", status=session.status)
        player_uid = str(actor.uid)
        if player_uid not in session.users_doc:
            raise Conflict("You are not a member of this session.", code="not_member")
        before = (set(session.users_doc), documents.invited_uids(session.invites_doc, now))
        changed, host_uid = _remove_member(session, actor.id, player_uid, now)
        documents.session_commit(
            session,
            now=now,
            fields=changed,
            before=before,
            render=False,
            logged=lambda: events.removal_events(
                session,
                actor,
                EventType.MEMBER_LEFT,
                player_uid,
                changed,
                documents.locked_host_uid(session),
                host_uid,
                now,
            ),
        )
        documents.vouch(session, host_uid)
        return session


def team_name(index: int) -> str:
    return f"Team {index + 1}"


def _teams_with_counts(session: GameSession) -> list[CountedTeam]:
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


def _choose_team(session: GameSession, teams: list[tuple[int, int]], requested: int | None) -> int | None:
    """The index of the team a joining player goes to, from the teams' (index, size): the
    requested one (409 when full), else the smallest with room, lowest index on ties."""
    validate_team_index(len(teams), requested)
    if not teams:
        return None
    room = [(index, size) for index, size in teams if session.team_size == 0 or size < session.team_size]
    if requested is not None:
        if not any(index == requested for index, _ in room):
            raise Conflict(f"Team {requested} is full.", code="team_full")
        return requested
    if not room:
        raise Conflict("The session is full.", code="session_full")
    return min(room, key=lambda t: (t[1], t[0]))[0]


def resize_teams(session: GameSession, num_teams: int, team_size: int, now: datetime) -> list[events.TeamMove]:
    """Add or remove teams for new numTeams/teamSize; 409 if members and active reservations
    would no longer fit. Players keep their team where it still exists and has room; the
    others move to the smallest teams. Returns the moves (for their `member.moved` events)."""
    members = list(
        Membership.objects.filter(session=session).select_related("team", "player").order_by("joined_at", "id")
    )
    reserved = Reservation.objects.active(now).filter(session=session).count()
    if num_teams > 0 and team_size > 0 and len(members) + reserved > num_teams * team_size:
        raise Conflict(
            f"{len(members)} members and {reserved} reservations do not fit in {num_teams} teams of {team_size}.",
            code="teams_do_not_fit",
        )
    existing = {t.index: t for t in Team.objects.filter(session=session)}
    for index in range(num_teams):
        if index not in existing:
            existing[index] = Team.objects.create(session=session, index=index, name=team_name(index))
    Team.objects.filter(session=session, index__gte=num_teams).delete()
    teams = [existing[i] for i in range(num_teams)]
    counts = {t.index: 0 for t in teams}
    homeless: list[Membership] = []
    for member in members:
        kept = member.team.index if member.team_id and member.team else None
        if kept is not None and kept < num_teams and (team_size == 0 or counts[kept] < team_size):
            counts[kept] += 1
        else:
            homeless.append(member)
    moves: list[events.TeamMove] = []
    for member in homeless:
        previous = member.team.index if member.team_id and member.team else None
        new_index: int | None = None
        if teams:
            new_index = min(counts, key=lambda i: (counts[i], i))
            counts[new_index] += 1
            member.team = teams[new_index]
        else:
            member.team = None
        member.save(update_fields=["team"])
        if new_index != previous:
            moves.append(events.TeamMove(member.player.uid, previous, new_index))
    return moves


@transaction.atomic
def session_move_to_team(*, session_id: int, actor: Actor, index: int, player_uid: Any = None) -> GameSession:
    """A member switches team, or the host (or session:*) moves another member."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    if player_uid is None or str(player_uid) == str(actor.uid):
        player_id = actor.id
    else:
        permissions.authorize_session_manage(actor, session)
        player_id = documents.player_by_uid(player_uid, "player").id
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
    previous = next((t.index for t in teams if t.id == membership.team_id), None)
    membership.team = target
    membership.save(update_fields=["team"])
    moved_uid = actor.uid if player_id == actor.id else player_uid
    documents.session_commit(
        session,
        now=now,
        logged=lambda: events.move_events(session, actor, [events.TeamMove(moved_uid, previous, index)], now),
    )
    return session


@transaction.atomic
def session_kick(*, session_id: int, actor: Actor, player_uid: Any) -> GameSession:
    """The host removes a player's membership, active reservation and pending invite alike;
    409 for oneself, for a player with none of these (expired ones do not count) or in a
    closed session. `version` moves when `users` or `invited` changes, not for a reservation."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    permissions.authorize_session_manage(actor, session)
    player = documents.player_by_uid(player_uid, "player")
    if player.id == actor.id:
        raise Conflict("You cannot kick yourself; leave instead.", code="kick_self")
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    is_member = Membership.objects.filter(session=session, player=player).exists()
    reservations = documents.drop_reservations(
        Reservation.objects.filter(session=session, player=player),
        now,
        cancelled_by=actor,
        cancel=True,
        session=session,
    )
    documents.mark_expired_invites(Invite.objects.filter(session=session, player=player), now)
    invites = Invite.objects.filter(session=session, player=player, state=InviteState.PENDING).update(
        state=InviteState.REVOKED, date_modified=now
    )
    if not (is_member or reservations or invites):
        raise Conflict("The player has no membership, reservation or invite here.", code="nothing_to_kick")
    before = (set(session.users_doc), documents.invited_uids(session.invites_doc, now))
    changed: set[str] = set()
    host_uid: Any = None
    player_uid = str(player.uid)
    if is_member:
        changed, host_uid = _remove_member(session, player.id, player_uid, now)
    if is_member or invites:
        documents.session_commit(session, now=now, fields=changed, before=before)  # re-rendered
    made: list[SessionEvent] = []
    if is_member:
        made += events.removal_events(
            session,
            actor,
            EventType.MEMBER_KICKED,
            player_uid,
            changed,
            documents.locked_host_uid(session),
            host_uid,
            now,
        )
    if invites:
        # (One pending invite at most: Invite's constraint.)
        made.append(events.event(session, EventType.INVITE_REVOKED, actor=actor, at=now, player_uid=player_uid))
    events.record(made)
    return session
