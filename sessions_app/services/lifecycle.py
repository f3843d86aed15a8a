"""A session's life over time: the status transitions (`TRANSITIONS`), closing (now or after
a grace period), heartbeats, the sweeper that records due time-driven closes, and the
operators' workflows over many sessions: purging closed ones and old events, and counting
what is there (`purge_sessions`, `session_stats` and `close_due_sessions` commands).

Lock order: close and heartbeat lock the session row (`documents.lock_session`), then raise
the players' view stamps (a heartbeat only when it settles a due close). The sweeper and
the purge lock session rows in pk order, a batch per transaction (skipping rows another
transaction holds, where the database can), and write the batch's view stamps once, in uid
order; the sweeper then applies the expiries of invites and reservations (deleting expired
reservations raises their holders' stamps) the same way: the sessions that have some, locked
in pk order a batch per transaction, then their rows, then the stamps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Avg, Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from sessions_project import metrics
from sessions_project.errors import Conflict
from sessions_project.times import iso

from .. import permissions
from ..event_models import EventType, SessionEvent
from ..models import (
    LIVE_STATUSES,
    GameSession,
    Invite,
    InviteState,
    Membership,
    Reservation,
    SessionStatus,
)
from . import documents, events

if TYPE_CHECKING:
    from ..permissions import Actor

S = SessionStatus

# --- transitions, close, heartbeat, sweeper -------------------------------------------------

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


CLOSE_AFTER_MAX = 3600


@transaction.atomic
def session_close(*, session_id: int, actor: Actor | None, close_after: int) -> GameSession:
    """DELETE ?closeAfter=N: closed now (N = 0) or closing until N seconds from now; on a
    closing session only ever brings closesAt sooner."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    if actor is not None:
        permissions.authorize_session_manage(actor, session)
    if close_after == 0:
        check_transition(session.status, S.CLOSED, "close")
        session.status = S.CLOSED
        session.closed_at = now
        documents.session_commit(
            session,
            now=now,
            fields={"status", "closed_at"},
            logged=lambda: [
                events.event(
                    session,
                    EventType.SESSION_CLOSED,
                    actor=actor,
                    at=now,
                    data={"reason": "close", "closedAt": iso(now)},
                )
            ],
        )
        return session
    check_transition(session.status, S.CLOSING, "close")
    closes_at = now + timedelta(seconds=close_after)
    if session.status == S.CLOSING and session.closes_at is not None and closes_at >= session.closes_at:
        return session  # never later: nothing changes
    session.status = S.CLOSING
    session.closes_at = closes_at
    documents.session_commit(
        session,
        now=now,
        fields={"status", "closes_at"},
        logged=lambda: [
            events.event(session, EventType.SESSION_CLOSING, actor=actor, at=now, data={"closesAt": iso(closes_at)})
        ],
    )
    return session


@transaction.atomic
def session_heartbeat(*, session_id: int, actor: Actor) -> GameSession:
    """Keep a session from going idle. Not a write: `version` and the ETag stay."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    permissions.authorize_heartbeat(actor, session)
    if session.status == S.CLOSED:
        raise Conflict("The session is closed.", code="session_closed", status=session.status)
    documents.refresh_idle_deadline(session, now)
    session.save(update_fields=["last_activity_at", "idle_deadline"])
    return session


def _settled_batch(sessions: QuerySet[GameSession], batch_size: int, now: datetime) -> list[GameSession]:
    """The next `batch_size` of these sessions, locked in pk order (rows another worker holds
    are skipped where the database can), each due close recorded as the services record it:
    the players' view stamps raised once for the batch, in uid order (see
    documents.touch_player_views), its session.closed events in one INSERT. Call it inside
    the batch's transaction."""
    locked = sessions.order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        locked = locked.select_for_update(skip_locked=True)
    batch = list(locked[:batch_size])
    touches: dict[str, datetime] = {}
    made: list[SessionEvent] = []
    for session in batch:
        documents.settle(session, now, touches, made)
    documents.touch_player_views(touches)
    events.record(made)
    return batch


def close_due_sessions(
    *, now: datetime | None = None, batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> list[GameSession]:
    """Record every due time-driven close (closesAt or idle deadline passed), then apply the
    expiries of invites and reservations, each with its event. Idempotent; several copies may
    run at once: rows another copy holds are skipped (SKIP LOCKED).
    `progress` is called after each batch with how many were closed so far."""
    now = now or timezone.now()
    closed: list[GameSession] = []
    while True:
        with transaction.atomic():
            batch = _settled_batch(GameSession.objects.due(now), batch_size, now)
            closed.extend(batch)
        if progress is not None and batch:
            progress(len(closed))
        if len(batch) < batch_size:
            break
    _apply_expiries(now, batch_size)
    metrics.count_sweep(len(closed))
    return closed


def _apply_expiries(now: datetime, batch_size: int) -> None:
    """Delete expired reservations and mark expired invites, with their events, under their
    sessions' locks (pk order, a batch per transaction; sessions another transaction holds are
    skipped): as a request applying them would, so one session's events get their ids in the
    order they commit, and a reader resuming after an id misses none of that session's."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    expiring = Q(pk__in=Reservation.objects.filter(expires_at__lte=now).values("session_id")) | Q(
        pk__in=Invite.objects.filter(state=InviteState.PENDING, expires_at__lte=now).values("session_id")
    )
    after = 0
    while True:
        with transaction.atomic():
            queryset = GameSession.objects.filter(expiring, pk__gt=after).order_by("pk")
            queryset = queryset.select_for_update(skip_locked=True) if skip_locked else queryset.select_for_update()
            locked = list(queryset.values_list("pk", flat=True)[:batch_size])
            if locked:
                # Each deletion raises the stamp it dates (players' views).
                documents.drop_reservations(Reservation.objects.filter(session_id__in=locked, expires_at__lte=now), now)
                documents.mark_expired_invites(Invite.objects.filter(session_id__in=locked), now)
        if len(locked) < batch_size:
            return
        after = locked[-1]


# --- purge ----------------------------------------------------------------------------------


def closed_before_q(closed_before: datetime, now: datetime) -> Q:
    """Sessions whose closedAt is before `closed_before`: a recorded close, or a live session
    whose closesAt or idle deadline has passed (it reads as closed at that time, swept or not).
    A live session whose deadline is still ahead is not closed, whatever `closed_before` says."""
    cutoff = min(closed_before, now)
    recorded = Q(status=SessionStatus.CLOSED, closed_at__lt=closed_before)
    # closedAt = min(closesAt, idle deadline) once that is <= now; it is before the cutoff
    # exactly when one of the two is both due and before it.
    due = Q(status__in=LIVE_STATUSES) & (
        Q(closes_at__lt=closed_before, closes_at__lte=cutoff)
        | Q(idle_deadline__lt=closed_before, idle_deadline__lte=cutoff)
    )
    return recorded | due


def purgeable_sessions(closed_before: datetime, now: datetime | None = None) -> QuerySet[GameSession]:
    return GameSession.objects.filter(closed_before_q(closed_before, now or timezone.now()))


def _cascades() -> list[tuple[type[models.Model], str]]:
    """(model, field) of every row deleted with a session (on_delete=CASCADE to GameSession)."""
    # include_hidden: JoinPasswordFailure points here with related_name="+".
    return [
        (rel.field.model, rel.field.name)
        for rel in GameSession._meta.get_fields(include_hidden=True)
        if isinstance(rel, ForeignObjectRel)
        and rel.auto_created
        and not rel.concrete
        and rel.on_delete is models.CASCADE
    ]


def _label(model: type[models.Model]) -> str:
    return str(model._meta.verbose_name_plural)


def sessions_purge(
    *,
    closed_before: datetime,
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete the sessions closed before `closed_before` and everything that hangs on them
    (members, teams, invites, reservations, scores...), `batch_size` sessions per transaction.
    Returns how many rows of each kind were (or, with `dry_run`, would be) deleted, sessions
    first. `progress` is called after each batch with the number of sessions deleted so far."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    queryset = purgeable_sessions(closed_before, now)
    counts = {_label(GameSession): 0}
    counts.update({_label(model): 0 for model, _ in _cascades()})
    if dry_run:
        counts[_label(GameSession)] = queryset.count()
        for model, field in _cascades():
            counts[_label(model)] = model._default_manager.filter(**{f"{field}__in": queryset.values("pk")}).count()
        return counts

    deleted_sessions = 0
    while True:
        with transaction.atomic():
            # Lock the session rows first (session before what hangs on it, as the services
            # do); rows a service holds right now are skipped and purged by a later run. A due
            # session not yet swept is recorded closed first, as the sweeper would: that raises
            # its players' view stamps to its deadline, which its rows (deleted next) dated
            # until now.
            batch = _settled_batch(queryset, batch_size, now)
            pks = [session.pk for session in batch]
            if pks:
                _, per_model = GameSession.objects.filter(pk__in=pks).delete()
                for label, count in per_model.items():
                    deleted_model = _model_by_label(label)
                    key = _label(deleted_model) if deleted_model is not None else label
                    counts[key] = counts.get(key, 0) + count
                deleted_sessions += len(pks)
        if pks and progress is not None:
            progress(deleted_sessions)
        if len(pks) < batch_size:
            return counts


def events_purge(*, now: datetime | None = None, dry_run: bool = False, batch_size: int = 5000) -> int:
    """Delete the session events older than EVENT_RETENTION_DAYS (whether their session is live,
    closed or gone), `batch_size` per statement; returns how many were (or would be) deleted."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    old = SessionEvent.objects.filter(at__lt=cutoff)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        # By id, oldest first (ids grow with time): short statements, none holding many locks.
        pks = list(old.order_by("id").values_list("id", flat=True)[:batch_size])
        if pks:
            deleted += SessionEvent.objects.filter(pk__in=pks).delete()[0]
        if len(pks) < batch_size:
            return deleted


def _model_by_label(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except LookupError:
        return None


# --- stats ----------------------------------------------------------------------------------


class SessionStats(TypedDict):
    sessions: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    by_visibility: dict[str, int]
    live_sessions: int
    members_in_live_sessions: int
    players_in_live_sessions: int
    sessions_with_capacity: int
    average_fill: float | None


class LiveFigures(TypedDict):
    by_status: dict[str, int]
    players_in_live_sessions: int


def _live_members(now: datetime) -> QuerySet[Membership]:
    """Memberships of sessions live as of now (open, in progress or closing, and not due)."""
    live = GameSession.objects.filter(status__in=LIVE_STATUSES).exclude(GameSession.objects.due_q(now))
    return Membership.objects.filter(session__in=live.values("pk"))


def live_figures(now: datetime | None = None) -> LiveFigures:
    """Sessions by status as of now (every status, a due session counted as closed) and the
    distinct players in live sessions: the figures /metrics exports (two queries)."""
    now = now or timezone.now()
    by_status = dict.fromkeys((s.value for s in SessionStatus), 0)
    by_status.update(GameSession.objects.count_by_effective_status(now))
    return {
        "by_status": by_status,
        "players_in_live_sessions": _live_members(now).values("player_id").distinct().count(),
    }


def session_stats(now: datetime | None = None) -> SessionStats:
    """Counts by status as of now (a due session counts as closed), type and visibility;
    members of live sessions; and the average fill of live sessions with a capacity."""
    now = now or timezone.now()
    sessions = GameSession.objects.all()
    figures = live_figures(now)
    by_status = figures["by_status"]
    by_type = {row["type"]: row["n"] for row in sessions.order_by("type").values("type").annotate(n=Count("pk"))}
    by_visibility = {
        row["visibility"]: row["n"]
        for row in sessions.order_by("visibility").values("visibility").annotate(n=Count("pk"))
    }
    live = GameSession.objects.filter(status__in=LIVE_STATUSES).exclude(GameSession.objects.due_q(now))
    member_count = (
        Membership.objects.filter(session=OuterRef("pk"))
        .order_by()
        .values("session")
        .annotate(n=Count("pk"))
        .values("n")
    )
    fill = (
        live.filter(num_teams__gt=0, team_size__gt=0)
        .annotate(members=Coalesce(Subquery(member_count), Value(0)))
        .aggregate(
            average=Avg(Cast(F("members"), FloatField()) / Cast(F("num_teams") * F("team_size"), FloatField())),
            sessions=Count("pk"),
        )
    )
    return {
        "sessions": sum(by_status.values()),
        "by_status": by_status,
        "by_type": by_type,
        "by_visibility": by_visibility,
        "live_sessions": by_status["open"] + by_status["in_progress"] + by_status["closing"],
        "members_in_live_sessions": _live_members(now).count(),
        "players_in_live_sessions": figures["players_in_live_sessions"],
        "sessions_with_capacity": fill["sessions"],
        "average_fill": fill["average"],
    }
