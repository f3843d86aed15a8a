"""Scores: a member's score submitted to a live session, the numbers a score and the catalog
take (`parse_number`, `json_number`), and a player's batch of past scores imported and
grouped into sessions the way score trackers do it. The catalog itself (songs and charts) has
no workflow beyond a row's own rules: its API creates and reads the rows directly.

Scores are not part of the session document (they are read at GET /sessions/{uid}/scores), so
adding a score does not move a session's `version` or ETag. A submitted score counts as
activity: it pushes the idle deadline back like a heartbeat. An import changes the documents of
the sessions it touches only where their members change (an imported session's `dateCreated`
and `closedAt` follow its first and last score, and a merge), and those changes go through
`documents.session_commit` like every other write.

Lock order: a submitted score locks its session row (`documents.lock_session`). An import
locks the importing player's row first (one import per player at a time), then the player's
imported sessions it may append to (`select_for_update`, in dateCreated order), then creates
sessions through `sessions.session_create` and commits the changed ones (raising the players'
view stamps last).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from players_app.models import Player
from sessions_project.errors import Conflict, InvalidInput, field_error
from sessions_project.fields import data_message, data_problem
from sessions_project.times import iso

from .. import permissions
from ..event_models import EventType
from ..models import Chart, GameSession, Score, SessionStatus, Visibility
from . import documents, events, sessions

if TYPE_CHECKING:
    from ..permissions import Actor

MAX_SIGNIFICANT_DIGITS = 15
SCORE_VALUE_DIGITS = 20  # Score.value: DecimalField(max_digits=20, decimal_places=6)
SCORE_VALUE_PLACES = 6
CLIENT_ID_MAX_LENGTH = 128
MARK_MAX_LENGTH = 32  # grade and lamp
MAX_ID = 2**63 - 1
IMPORT_MAX_SCORES = 10_000
# Imported scores are past play: from the Unix epoch to now, with a day's slack for clocks.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
DATE_AND_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# IN (...) lists are cut into chunks that SQLite's bound-parameter limit always allows.
IN_CHUNK = 900

SCORING_STATUSES = (SessionStatus.OPEN, SessionStatus.IN_PROGRESS)


# --- numbers --------------------------------------------------------------------------------


def parse_number(raw: Any, *, max_digits: int, decimal_places: int) -> Decimal:
    """A JSON number (not a string, not a boolean) as a Decimal that fits a
    DecimalField(max_digits, decimal_places); ValueError with the reason otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal)):
        raise ValueError("A number is required.")
    try:
        # str() of a float is its shortest round-trip form: 0.1 stays 0.1, not 0.1000000000000000055...
        value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
    except InvalidOperation:
        raise ValueError("A number is required.") from None
    if not value.is_finite():
        raise ValueError("A finite number is required.")
    # A JSON number is a double to most clients, and SQLite stores decimals as doubles: past 15
    # significant digits a value would not come back as it was sent (on SQLite, not at all).
    if len(value.normalize().as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        raise ValueError(f"At most {MAX_SIGNIFICANT_DIGITS} significant digits.")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimal_places:
        raise ValueError(f"At most {decimal_places} decimal places.")
    whole_digits = max_digits - decimal_places
    if abs(value) >= Decimal(10) ** whole_digits:
        raise ValueError(f"Must be less than 10^{whole_digits} in magnitude.")
    return value


def parse_score_value(raw: Any) -> Decimal:
    return parse_number(raw, max_digits=SCORE_VALUE_DIGITS, decimal_places=SCORE_VALUE_PLACES)


def json_number(value: Decimal | None) -> int | float | None:
    """A stored decimal as a JSON number: an int when integral (900000, not 900000.000000)."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(value)


# --- submitting a score to a live session ---------------------------------------------------


def _player_to_score(actor: Actor, session: GameSession, player_uid: Any) -> int:
    """The id of the player the score is for: the caller, or for session:* the member named
    by `player` (400 unknown or not a member)."""
    permissions.authorize_score_submit(actor, session, player_uid)
    if permissions.names_self(actor, player_uid):
        return actor.id
    player = documents.player_by_uid(player_uid, "player")
    if str(player.uid) not in session.users_doc:
        message = f"{player.username} is not a member of this session."
        raise InvalidInput(message, code="player_not_member", errors=[field_error("player", message, "not_member")])
    return player.id


@transaction.atomic
def score_submit(
    *,
    session_id: int,
    actor: Actor,
    chart_id: int,
    value: Decimal,
    player_uid: Any = None,
    grade: str = "",
    lamp: str = "",
    data: dict[str, Any] | None = None,
    time_achieved: datetime | None = None,
) -> Score:
    """Record a member's score in a session that is open or in progress: a member submits its
    own, a session:* account reports a member's (`player_uid`). 403 not a member (or naming
    another player without session:*), 400 unknown player or chart, 409 closing or closed."""
    now = timezone.now()
    session = documents.lock_session(session_id)
    documents.settle(session, now)
    player_id = _player_to_score(actor, session, player_uid)
    if not Chart.objects.filter(pk=chart_id).exists():
        message = f"No chart with id {chart_id}."
        raise InvalidInput(message, code="unknown_chart", errors=[field_error("chart", message, "unknown_chart")])
    if session.status not in SCORING_STATUSES:
        raise Conflict(
            f"Scores are submitted only while a session is open or in progress (current status: {session.status}).",
            code="not_accepting_scores",
            status=session.status,
        )
    score = Score.objects.create(
        session=session,
        player_id=player_id,
        chart_id=chart_id,
        value=value,
        grade=grade or "",
        lamp=lamp or "",
        data=data or {},
        time_achieved=time_achieved or now,
        date_created=now,
    )
    # Playing is activity: the idle deadline moves back, as with a heartbeat (version stays).
    documents.refresh_idle_deadline(session, now)
    session.save(update_fields=["last_activity_at", "idle_deadline"])
    uid = actor.uid if player_id == actor.id else player_uid
    data = {"scoreId": score.pk, "chart": chart_id, "value": json_number(score.value)}
    events.record_one(session, EventType.SCORE_SUBMITTED, actor=actor, at=now, version=None, player_uid=uid, data=data)
    return score


# --- importing a batch of past scores -------------------------------------------------------


@dataclass(frozen=True)
class ImportItem:
    """One well-formed score of an import batch (`index`: its place in the request)."""

    index: int
    client_id: str
    chart_id: int
    value: Decimal
    time_achieved: datetime
    grade: str = ""
    lamp: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedGroup:
    """What happened to one group of the batch: the session it went to and how."""

    session_uid: str
    type: str  # "created" or "appended"
    merged: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    groups: list[ImportedGroup]
    skipped: int


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _clean_item(
    index: int, raw: Any, problems: list[dict[str, str]], now: datetime
) -> tuple[ImportItem | None, str | None]:
    """(the item if well formed, its clientId if that alone is well formed); each problem is
    appended to `problems` with the member's path (scores[3].timeAchieved)."""
    prefix = f"scores[{index}]"

    def problem(member: str, message: str, code: str = "invalid") -> None:
        problems.append(field_error(f"{prefix}.{member}" if member else prefix, message, code))

    if not isinstance(raw, dict):
        problem("", "Each score must be a JSON object.", "not_an_object")
        return None, None
    before = len(problems)

    client_id = raw.get("clientId")
    if client_id is None:
        message = "clientId is required: your own id for this score, so that a re-sent import skips it."
        problem("clientId", message, "required")
    elif not isinstance(client_id, str) or not client_id.strip():
        problem("clientId", "clientId must be a non-empty string.")
        client_id = None
    elif len(client_id) > CLIENT_ID_MAX_LENGTH:
        problem("clientId", f"clientId must be at most {CLIENT_ID_MAX_LENGTH} characters.", "max_length")
        client_id = None

    chart = raw.get("chart")
    if chart is None:
        problem("chart", "chart (a chart id) is required.", "required")
    elif isinstance(chart, bool) or not isinstance(chart, int) or not 1 <= chart <= MAX_ID:
        problem("chart", "chart must be a chart id (a whole number).")
        chart = None

    value: Decimal | None = None
    if raw.get("value") is None:
        problem("value", "value is required.", "required")
    else:
        try:
            value = parse_score_value(raw["value"])
        except ValueError as exc:
            problem("value", str(exc))

    time_achieved: datetime | None = None
    raw_time = raw.get("timeAchieved")
    if raw_time is None:
        problem(
            "timeAchieved",
            "timeAchieved is required: a score without the time it was achieved cannot be placed in a session.",
            "required",
        )
    else:
        time_achieved = _parse_time(raw_time)
        if time_achieved is None:
            problem("timeAchieved", "timeAchieved must be an ISO 8601 time, e.g. 2026-11-22T18:49:22.123Z.")
        elif not EARLIEST_TIME <= time_achieved <= now + FUTURE_SLACK:
            problem("timeAchieved", "timeAchieved must be a past time, from 1970 on.", "out_of_range")

    marks = {}
    for member in ("grade", "lamp"):
        mark = raw.get(member)
        if mark is None:
            marks[member] = ""
        elif not isinstance(mark, str):
            problem(member, f"{member} must be a string.")
        elif len(mark) > MARK_MAX_LENGTH:
            problem(member, f"{member} must be at most {MARK_MAX_LENGTH} characters.", "max_length")
        else:
            marks[member] = mark

    data = raw.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        problem("data", "data must be a JSON object.", "not_object")
    elif (data_code := data_problem(data)) is not None:
        problem("data", data_message(data_code), data_code)

    if len(problems) > before or client_id is None or chart is None or value is None or time_achieved is None:
        return None, client_id
    item = ImportItem(index, client_id, chart, value, time_achieved, marks["grade"], marks["lamp"], data)
    return item, client_id


def _parse_time(raw: Any) -> datetime | None:
    """An ISO 8601 date and time; one without an offset is taken as UTC (the API's time zone).
    A date alone is refused: it cannot place a score in a session."""
    if not isinstance(raw, str) or not DATE_AND_TIME.match(raw.strip()):
        return None
    try:
        parsed = parse_datetime(raw.strip())
    except ValueError:  # well formed but impossible, e.g. month 13
        return None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _validate_batch(scores: Sequence[Any], now: datetime) -> list[ImportItem]:
    """Every item well formed, its chart known and its clientId unique in the batch; else one
    400 listing every problem of every score (in the order of the batch). Also keeps the times
    in a range where adding the gap cannot overflow."""
    if not isinstance(scores, (list, tuple)):
        message = "scores must be a list of scores."
        raise InvalidInput(message, errors=[field_error("scores", message, "not_a_list")])
    if len(scores) > IMPORT_MAX_SCORES:
        message = f"At most {IMPORT_MAX_SCORES} scores per import; send the rest in another batch."
        raise InvalidInput(message, errors=[field_error("scores", message, "max_length")])
    problems_at: dict[int, list[dict[str, str]]] = {}
    items: list[ImportItem] = []
    first_with: dict[str, int] = {}
    for index, raw in enumerate(scores):
        problems: list[dict[str, str]] = []
        item, client_id = _clean_item(index, raw, problems, now)
        if client_id is not None:
            if client_id in first_with:
                problems.append(
                    field_error(
                        f"scores[{index}].clientId",
                        f"The same clientId as scores[{first_with[client_id]}]; each score of a batch needs its own.",
                        "duplicate_client_id",
                    )
                )
                item = None
            else:
                first_with[client_id] = index
        if problems:
            problems_at[index] = problems
        elif item is not None:
            items.append(item)

    chart_ids = sorted({item.chart_id for item in items})
    known: set[int] = set()
    for chunk in _chunks(chart_ids):
        known.update(Chart.objects.filter(pk__in=chunk).order_by().values_list("pk", flat=True))
    for item in items:
        if item.chart_id not in known:
            problems_at[item.index] = [
                field_error(f"scores[{item.index}].chart", f"No chart with id {item.chart_id}.", "unknown_chart")
            ]

    if problems_at:
        errors = [problem for index in sorted(problems_at) for problem in problems_at[index]]
        raise InvalidInput(
            f"{len(problems_at)} of {len(scores)} scores have problems; nothing was imported.",
            code="invalid_scores",
            errors=errors,
        )
    return items


def _groups(items: list[ImportItem], gap: timedelta) -> list[list[ImportItem]]:
    """The batch in time order, cut wherever two consecutive scores are `gap` or more apart."""
    ordered = sorted(items, key=lambda item: (item.time_achieved, item.index))
    groups: list[list[ImportItem]] = []
    for item in ordered:
        if groups and item.time_achieved - groups[-1][-1].time_achieved < gap:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def imported_session_name(first: datetime) -> str:
    return f"Imported session {first.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _imported_session_create(actor: Actor, first: datetime, last: datetime) -> GameSession:
    """A record of past play, made like every session (sessions.session_create renders its
    documents): private, hosted by the importer as its only member, never idle-closed; then
    closed at its last score, with dateCreated at its first."""
    session = sessions.session_create(
        actor=actor,
        values={"visibility": Visibility.PRIVATE, "idle_timeout": 0, "name": imported_session_name(first)},
        counts_as_live=False,
    )
    session.status = SessionStatus.CLOSED
    session.date_created = first
    session.closed_at = last
    session.is_imported = True
    session.save(update_fields=["status", "date_created", "closed_at", "is_imported"])
    # Made closed: its close is recorded too (the status change does not move `version`).
    data = {"reason": "imported", "closedAt": iso(last)}
    events.record_one(session, EventType.SESSION_CLOSED, actor=actor, version=None, data=data)
    return session


def _closed_at(session: GameSession) -> datetime:
    """An imported session's end: it is recorded closed when made, at its last score."""
    assert session.closed_at is not None, "an imported session is always closed"
    return session.closed_at


def _new_scores(session: GameSession, actor: Actor, items: list[ImportItem], now: datetime) -> list[Score]:
    return [
        Score(
            session=session,
            player_id=actor.id,
            chart_id=item.chart_id,
            value=item.value,
            grade=item.grade,
            lamp=item.lamp,
            data=item.data,
            time_achieved=item.time_achieved,
            client_id=item.client_id,
            date_created=now,
        )
        for item in items
    ]


@transaction.atomic
def scores_import(*, actor: Actor, scores: Sequence[Any]) -> ImportResult:
    """Import a batch of the caller's past scores (the request's JSON items as they are).

    All or nothing: a bad score (malformed, unknown chart, no time, no or a repeated clientId)
    rejects the batch with one 400 listing every problem, and nothing is written. Scores whose
    clientId this player already imported are skipped and counted. The rest, in time order, are
    cut into groups wherever there is a gap of SCORE_IMPORT_GAP or more; a group within that gap
    (strictly shorter) of one of the player's imported sessions is appended to it, and of two or
    more merges them into the earliest (the others' scores move to it and they are deleted), so
    imported sessions never overlap; any other group becomes a new imported session."""
    now = timezone.now()
    items = _validate_batch(scores, now)
    gap = timedelta(seconds=settings.SCORE_IMPORT_GAP)

    # One import per player at a time: the skip check and the grouping below must see the
    # scores and sessions a concurrent import of the same player writes.
    list(Player.objects.select_for_update().filter(pk=actor.id).order_by().values_list("pk", flat=True))
    client_ids = [item.client_id for item in items]
    already: set[str | None] = set()
    for chunk in _chunks(client_ids):
        already.update(
            Score.objects.filter(player_id=actor.id, client_id__in=chunk).values_list("client_id", flat=True)
        )
    fresh = [item for item in items if item.client_id not in already]
    result = ImportResult(groups=[], skipped=len(items) - len(fresh))
    if not fresh:
        return result

    groups = _groups(fresh, gap)
    start, end = groups[0][0].time_achieved, groups[-1][-1].time_achieved
    # The player's imported sessions that could be within the gap of any group, locked; their
    # span is [dateCreated, closedAt] (first and last score).
    existing = list(
        GameSession.objects.select_for_update()
        .filter(is_imported=True, creator_id=actor.id, date_created__lt=end + gap, closed_at__gt=start - gap)
        .order_by("date_created", "pk")
    )
    changed: dict[int, set[str]] = {}  # existing session pk -> document fields an append changed
    new_scores: list[Score] = []
    for group in groups:
        first, last = group[0].time_achieved, group[-1].time_achieved
        near = [s for s in existing if s.date_created < last + gap and _closed_at(s) > first - gap]
        if not near:
            session = _imported_session_create(actor, first, last)
            new_scores += _new_scores(session, actor, group, now)
            result.groups.append(ImportedGroup(str(session.uid), "created"))
            continue
        target, absorbed = near[0], near[1:]
        fields = changed.setdefault(target.pk, set())
        if absorbed:
            absorbed_ids = [s.pk for s in absorbed]
            Score.objects.filter(session_id__in=absorbed_ids).update(session_id=target.pk)
            first = min(first, *(s.date_created for s in absorbed))
            last = max(last, *(_closed_at(s) for s in absorbed))
            if any(s.highlight for s in absorbed) and not target.highlight:
                target.highlight = True  # the player highlighted some of this play: keep it
                fields.add("highlight")
            GameSession.objects.filter(pk__in=absorbed_ids).delete()
            # Groups come in time order and the earliest near session is the target, so a
            # session absorbed here was no earlier group's target: none of this batch is pending for it.
            existing = [s for s in existing if s.pk not in absorbed_ids]
        if first < target.date_created:
            target.date_created = first
            fields.add("date_created")
        if last > _closed_at(target):
            target.closed_at = last
            fields.add("closed_at")
        new_scores += _new_scores(target, actor, group, now)
        result.groups.append(ImportedGroup(str(target.uid), "appended", [str(s.uid) for s in absorbed]))

    Score.objects.bulk_create(new_scores, batch_size=500)
    for session in existing:
        committed = changed.get(session.pk)
        if committed:  # a new first or last score (or highlight) changes the document: version + 1
            documents.session_commit(session, now=now, fields=committed)
    return result
