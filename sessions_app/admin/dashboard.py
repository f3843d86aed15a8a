"""The numbers on the admin dashboard, in four queries whatever the tables hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from ..models import LIVE_STATUSES, GameSession, Membership, SessionStatus

HOURS = 24


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int
    # Share of all sessions, 0 to 100.
    percent: float


@dataclass(frozen=True)
class HourCount:
    start: datetime
    count: int
    # Bar height as a share of the busiest hour, 0 to 100.
    percent: int


@dataclass
class Dashboard:
    """Sessions by effective status, who is playing now, and sessions created per hour."""

    now: datetime
    by_status: list[StatusCount]
    players_in_sessions: int
    joins_last_hour: int
    hourly: list[HourCount] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(s.count for s in self.by_status)

    @property
    def live(self) -> int:
        return sum(s.count for s in self.by_status if s.status != SessionStatus.CLOSED)

    @property
    def created_last_day(self) -> int:
        return sum(h.count for h in self.hourly)

    @property
    def busiest_hour(self) -> int:
        return max((h.count for h in self.hourly), default=0)


def build_dashboard(now: datetime | None = None) -> Dashboard:
    """Four queries: status counts, players in live sessions, recent joins, hourly creations."""
    now = now or timezone.now()
    sessions = GameSession.objects.order_by()  # no default ordering in the GROUP BYs

    # 1. Sessions by effective status: a session past closesAt or its idle deadline counts as
    # closed, as it reads everywhere else, before any sweeper has recorded it.
    counts = sessions.count_by_effective_status(now)
    total = sum(counts.values())
    by_status = [
        StatusCount(s.value, s.label, counts.get(s.value, 0), 100 * counts.get(s.value, 0) / total if total else 0)
        for s in SessionStatus
    ]

    # 2. Distinct players who are members of a session that is still live.
    live = sessions.filter(status__in=LIVE_STATUSES).exclude(GameSession.objects.due_q(now))
    players = Membership.objects.filter(session__in=live.values("pk")).aggregate(n=Count("player_id", distinct=True))

    # 3. Joins in the last hour (memberships still held: a player who left is not counted).
    joins = Membership.objects.filter(joined_at__gt=now - timedelta(hours=1)).count()

    # 4. Sessions created per hour over the last day, this hour included.
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    per_hour = dict(
        sessions.filter(date_created__gte=first_hour)
        .annotate(hour=TruncHour("date_created"))
        .values_list("hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    busiest = max(per_hour.values(), default=0)
    hourly = []
    for offset in range(HOURS):
        start = first_hour + timedelta(hours=offset)
        count = per_hour.get(start, 0)
        hourly.append(HourCount(start, count, round(100 * count / busiest) if busiest else 0))

    return Dashboard(
        now=now,
        by_status=by_status,
        players_in_sessions=players["n"] or 0,
        joins_last_hour=joins,
        hourly=hourly,
    )
