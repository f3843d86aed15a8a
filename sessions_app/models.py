"""Sessions and everything that hangs on them: teams, members, invites, reservations, scores.

The tables (Membership, Team, Invite, Reservation) are the truth. A session row also carries its
rendered `users`, `teams`, `invited` (`*_doc`) and reservations (`reservations_doc`), rewritten in
the same transaction as every change of them: a session document is one row, one query.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from sessions_project.jsonfield import JSONField
from sessions_project.times import iso

from .codes import new_join_code

if TYPE_CHECKING:
    from .permissions import Actor


class SessionStatus(models.TextChoices):
    OPEN = "open", "open"
    IN_PROGRESS = "in_progress", "in progress"
    CLOSING = "closing", "closing"
    CLOSED = "closed", "closed"


class Visibility(models.TextChoices):
    PUBLIC = "public", "public"
    PRIVATE = "private", "private"


LIVE_STATUSES = (SessionStatus.OPEN, SessionStatus.IN_PROGRESS, SessionStatus.CLOSING)

# The API scopes, as Django permissions on GameSession (checked as "sessions_app.<codename>").
SCOPE_ANY = "session:*"
SCOPE_READ_PLAYER_ANY = "session:read-player:any"
SCOPE_READ_PLAYER_SELF = "session:read-player:self"
PERM_CUSTOMISE = "customise_session"
PERM_TRUNCATE = "truncate_sessions"


def perm(codename: str) -> str:
    return f"sessions_app.{codename}"


class GameSessionQuerySet(models.QuerySet["GameSession"]):
    """Named reads: visibility for a caller, and the status as of now."""

    def due_q(self, now: datetime | None = None) -> Q:
        """Live sessions whose closesAt or idle deadline has passed: they read as closed."""
        now = now or timezone.now()
        return Q(status__in=LIVE_STATUSES) & (Q(closes_at__lte=now) | Q(idle_deadline__lte=now))

    def _effective_status(self, now: datetime | None) -> Case:
        return Case(
            When(self.due_q(now), then=Value(SessionStatus.CLOSED.value)),
            default=F("status"),
            output_field=models.CharField(),
        )

    def with_effective_status(self, now: datetime | None = None) -> GameSessionQuerySet:
        """Annotate `status_now`: `closed` once due, even before the sweeper ran. (Not named
        `effective_status`: on a model instance that would hide the method of that name.)
        Typed without the annotation: the stubs lose it through a method's return type, so
        reads of `status_now` values live in this class (`count_by_effective_status`)."""
        return self.annotate(status_now=self._effective_status(now))

    def count_by_effective_status(self, now: datetime | None = None) -> dict[str, int]:
        """How many sessions read as each status as of now (one GROUP BY; statuses with none
        are absent)."""
        rows = self.annotate(status_now=self._effective_status(now)).values_list("status_now").annotate(n=Count("pk"))
        return dict(rows.order_by())

    def due(self, now: datetime | None = None) -> GameSessionQuerySet:
        return self.filter(self.due_q(now))

    def visible_to(self, user: Actor) -> GameSessionQuerySet:
        """Sessions the caller may see: public ones and private ones it hosts, belongs to,
        is invited to (pending, unexpired) or holds an active reservation in; all for session:*."""
        if user.has_perm(perm(SCOPE_ANY)):
            return self
        return self.filter(visibility_q(user.id))


def row_visible_to(user: Actor, row: dict[str, Any], now: datetime | None = None) -> bool:
    """The rule of `visibility_q` for one session row already read (hot path of GET by uid):
    public, hosted, member or pending invite from the row's rendered members; only a private
    session the caller has no other tie to costs a query (for a reservation)."""
    if row["visibility"] == Visibility.PUBLIC or row["host_id"] == user.id or user.has_perm(perm(SCOPE_ANY)):
        return True
    player_uid = str(user.uid)
    if player_uid in row["users_doc"]:
        return True
    now = now or timezone.now()
    now_iso = iso(now)
    for invite in row["invites_doc"]:
        if invite["uid"] == player_uid and (invite["expiresAt"] is None or invite["expiresAt"] > now_iso):
            return True
    return Reservation.objects.active(now).filter(session_id=row["id"], player_id=user.id).exists()


def visibility_q(player_id: int, now: datetime | None = None, *, public: bool = True) -> Q:
    """Public, hosted, or tied by a membership, a pending unexpired invite or an active
    reservation: the ties one raw UNION under an ORM `id IN` (which takes the table's alias),
    cheaper to compile than three Exists(). `public=False`: what shows a private session, as
    one `id IN` (hosted or tied) of a few ids: a semi-join, not a filter of each private row."""
    at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    ties = (
        f"SELECT session_id FROM {Membership._meta.db_table} WHERE player_id = %s"
        f" UNION SELECT session_id FROM {Invite._meta.db_table} WHERE player_id = %s AND state = %s"
        " AND (expires_at IS NULL OR expires_at > %s)"
        f" UNION SELECT session_id FROM {Reservation._meta.db_table} WHERE player_id = %s AND expires_at > %s"
    )
    params = (player_id, player_id, InviteState.PENDING.value, at, player_id, at)
    if not public:
        hosted = f"SELECT id FROM {GameSession._meta.db_table} WHERE host_id = %s UNION "
        return Q(id__in=RawSQL(hosted + ties, (player_id, *params)))
    return Q(visibility=Visibility.PUBLIC) | Q(host_id=player_id) | Q(id__in=RawSQL(ties, params))


# Page 1 sorted by any member (filters.SORTABLE) either way, with parse_sort's uid ASC tiebreak,
# is an index scan stopped by the LIMIT. Repeating values need an index per direction (`col
# DESC, uid` forward is not `col, uid` backward); near-unique dates need one (an incremental
# sort orders equal times by uid); uid has its unique index. status_now cannot be indexed: a
# page sorted by it is read from one part per status, each a walk of the uid index (lists.py).
_SORT_BOTH_WAYS = {
    "version": "version",
    "visibility": "visibility",
    "num_teams": "teams",
    "team_size": "team_size",
    "type": "type",
    "name": "name",
    "highlight": "highlight",
    "workspace_id": "workspace",
    "closes_at": "closes",
}
SORT_INDEXES = [
    # Also serves date_created's range filters (it replaces that column's own index). With what
    # the visibility rule reads, a deep skip's keys are an index-only scan (page_of, deferred).
    models.Index(fields=["-date_created", "uid", "visibility", "host", "id"], name="session_sort_created"),
    models.Index(fields=["-date_modified", "uid"], name="session_sort_modified"),
    *(
        models.Index(fields=[f"{sign}{column}", "uid"], name=f"session_sort_{short}_{suffix}")
        for column, short in _SORT_BOTH_WAYS.items()
        for sign, suffix in (("", "asc"), ("-", "desc"))
    ),
]


class GameSession(models.Model):
    """A real-time interaction between a group of players (seed 001's Session)."""

    uid = models.UUIDField("UID", default=uuid.uuid4, unique=True, editable=False)
    date_created = models.DateTimeField(default=timezone.now, editable=False)
    date_modified = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=0, editable=False)
    data = JSONField(default=dict, blank=True)
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hosted_sessions",
        help_text="Empty: the session belongs to the system and any member may modify its data.",
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_sessions",
        editable=False,
    )
    server_uid = models.UUIDField("server UID", null=True, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC)
    num_teams = models.PositiveIntegerField(default=0)
    team_size = models.PositiveIntegerField(default=0)
    password_hash = models.CharField(max_length=256, blank=True, default="", editable=False)
    type = models.CharField(max_length=128, default="default")
    name = models.CharField(max_length=80, blank=True, default="")
    desc = models.CharField("description", max_length=120, blank=True, default="")
    highlight = models.BooleanField(default=False)
    workspace_id = models.CharField("workspace ID", max_length=255, blank=True, default="", db_index=True)
    is_imported = models.BooleanField(default=False, editable=False, help_text="Created by a score import.")
    idle_timeout = models.PositiveIntegerField(
        default=0, help_text="Seconds without a write or heartbeat before the session closes; 0: never."
    )
    last_activity_at = models.DateTimeField(default=timezone.now, editable=False)
    idle_deadline = models.DateTimeField(null=True, blank=True, editable=False)
    closes_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Shown to members and session:* only; unique among live sessions (the constraint below).
    join_code = models.CharField(max_length=6, default=new_join_code, editable=False)
    # Rendered members of the session document (see the module docstring).
    users_doc = JSONField(default=list, editable=False)
    teams_doc = JSONField(default=list, editable=False)
    invites_doc = JSONField(default=list, editable=False)
    reservations_doc = JSONField(default=list, editable=False)  # [{"uid", "expiresAt"}]: places.py

    objects = GameSessionQuerySet.as_manager()

    class Meta:
        verbose_name = "session"
        verbose_name_plural = "sessions"
        ordering = ["-date_created", "uid"]
        indexes = [
            models.Index(fields=["status", "closes_at"], name="session_status_closes"),
            models.Index(fields=["status", "idle_deadline"], name="session_status_idle"),
            models.Index(fields=["visibility", "-date_created"], name="session_visibility_created"),
            *SORT_INDEXES,
            # reads.count_visible: an index-only scan of each, holding what the status filter
            # reads (as of now); a caller's private sessions are a semi-join of a few ids instead.
            # A row is in one of them: a write costs what session_count_cover (replaced) did.
            *(
                models.Index(
                    fields=["status", "closes_at", "idle_deadline"],
                    condition=Q(visibility=v),
                    name=f"session_count_{v}",
                )
                for v in ("public", "private")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in SessionStatus]), name="session_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(visibility__in=[v.value for v in Visibility]), name="session_visibility_valid"
            ),
            # Also the index a join by code looks the code up in (its query repeats the condition).
            models.UniqueConstraint(
                fields=["join_code"],
                condition=Q(status__in=[s.value for s in LIVE_STATUSES]),
                name="session_join_code_live",
            ),
        ]
        permissions = [
            (SCOPE_ANY, "May do anything to any session (game servers, operators)"),
            (SCOPE_READ_PLAYER_ANY, "May read any player's sessions"),
            (SCOPE_READ_PLAYER_SELF, "May read one's own sessions"),
            (PERM_CUSTOMISE, "May name, describe and highlight the sessions one hosts"),
            (PERM_TRUNCATE, "May delete every session at once (DELETE /sessions)"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.uid)

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def capacity(self) -> int | None:
        """numTeams x teamSize when both are above 0; None means no limit."""
        if self.num_teams > 0 and self.team_size > 0:
            return self.num_teams * self.team_size
        return None

    def due_at(self) -> datetime | None:
        """When time closes this live session (closesAt or idle deadline), or None."""
        times = [t for t in (self.closes_at, self.idle_deadline) if t is not None]
        return min(times) if times else None

    def is_visible_to(self, user: Actor, now: datetime | None = None) -> bool:
        return row_visible_to(user, self.__dict__, now)

    def effective_status(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        due = self.due_at()
        if self.status != SessionStatus.CLOSED and due is not None and due <= now:
            return SessionStatus.CLOSED
        return self.status


class Team(models.Model):
    """One of a session's `numTeams` teams; `teamSize` limits its players."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="teams")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["session", "index"]
        constraints = [models.UniqueConstraint(fields=["session", "index"], name="team_unique_index")]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A player in a session's `users`, and its team."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="memberships")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships")
    joined_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "player"], name="membership_unique_player")]
        indexes = [models.Index(fields=["player", "session"], name="membership_player")]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.session_id}"


class InviteState(models.TextChoices):
    PENDING = "pending", "pending"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"
    REVOKED = "revoked", "revoked"
    EXPIRED = "expired", "expired"


class InviteQuerySet(models.QuerySet["Invite"]):
    def pending(self, now: datetime | None = None) -> InviteQuerySet:
        """Pending and not past `expires_at`: the one rule for `invited`, visibility and views."""
        now = now or timezone.now()
        return self.filter(state=InviteState.PENDING).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Invite(models.Model):
    """The host's invitation of a player into a session."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="invites")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invites")
    inviting_player = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_invites"
    )
    state = models.CharField(max_length=16, choices=InviteState.choices, default=InviteState.PENDING)
    date_created = models.DateTimeField(default=timezone.now, db_index=True)
    date_modified = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["date_created", "id"]
        constraints = [
            # A pending invite that has expired by time still holds this slot until it is
            # marked expired (services do that before inviting again).
            models.UniqueConstraint(
                fields=["session", "player"],
                condition=Q(state="pending"),
                name="invite_one_pending_per_player",
            ),
        ]
        indexes = [models.Index(fields=["player", "state"], name="invite_player_state")]

    def __str__(self) -> str:
        return f"invite {self.pk} ({self.state})"

    def is_pending(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.state == InviteState.PENDING and (self.expires_at is None or self.expires_at > now)


class ReservationQuerySet(models.QuerySet["Reservation"]):
    def active(self, now: datetime | None = None) -> ReservationQuerySet:
        """Not yet expired: an active reservation holds a place against capacity."""
        return self.filter(expires_at__gt=now or timezone.now())


class Reservation(models.Model):
    """A place held in a session for one player until it joins, is cancelled or expires.

    Using or cancelling a reservation deletes it; expiry is by time alone, so an expired row
    frees its place without any job (the sweeper deletes expired rows later)."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="reservations")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    date_created = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)

    objects = ReservationQuerySet.as_manager()

    class Meta:
        ordering = ["date_created", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "player"], name="reservation_unique_player")]
        indexes = [models.Index(fields=["player", "expires_at"], name="reservation_player")]

    def __str__(self) -> str:
        return f"reservation {self.pk}"


class PlayerSessionsStamp(models.Model):
    """When a write last changed what a player's sessions view (seed 003) shows.

    A removal (leave, kick, cancel, close, delete) leaves no row to date it, so every write
    that changes a player's view raises this stamp (`services.documents.touch_player_views`). Changes by
    time alone (an invite or reservation expiring, a session passing its deadline) are dated
    at read from the rows, and raise the stamp when a write records or deletes those rows.
    Keyed by the player's uid, the name session documents use, so no lookup is needed. It also
    remembers the view last built (sessions_app.reads); `generation` moves on every raise, even
    one that leaves `changed_at` as it was, and voids it."""

    player_uid = models.UUIDField("player UID", primary_key=True)
    changed_at = models.DateTimeField()
    # db_default: touch_player_views inserts in raw SQL naming only the two columns above.
    generation = models.BigIntegerField(default=0, db_default=0, editable=False)
    # The view as last built: the generation it was built at, its ETag, its earliest future
    # deadline, its body (JSON text: jsonb would reorder the keys).
    view_generation = models.BigIntegerField(null=True, blank=True, editable=False)
    view_etag = models.CharField("view ETag", max_length=64, blank=True, default="", db_default="", editable=False)
    view_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    view_body = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        verbose_name = "player sessions stamp"

    def __str__(self) -> str:
        return f"{self.player_uid} changed at {self.changed_at}"


class Song(models.Model):
    """A song of the catalog."""

    title = models.CharField(max_length=200, db_index=True)
    artist = models.CharField(max_length=200, db_index=True)
    subtitle = models.CharField(max_length=200, blank=True, default="")
    genre = models.CharField(max_length=100, blank=True, default="")
    bpm = models.DecimalField("BPM", max_digits=7, decimal_places=2, null=True, blank=True)
    length_seconds = models.PositiveIntegerField(null=True, blank=True)
    data = JSONField(default=dict, blank=True)
    date_created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["title", "artist", "id"]

    def __str__(self) -> str:
        return f"{self.artist} - {self.title}"


class Chart(models.Model):
    """A playable chart of a song, at a difficulty."""

    song = models.ForeignKey(Song, on_delete=models.CASCADE, related_name="charts")
    difficulty = models.CharField(max_length=64, db_index=True)
    level = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    data = JSONField(default=dict, blank=True)
    date_created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["song", "difficulty", "id"]

    def __str__(self) -> str:
        return f"{self.song} [{self.difficulty}]"


class Score(models.Model):
    """A score a player achieved on a chart, recorded in a session."""

    session = models.ForeignKey(GameSession, on_delete=models.CASCADE, related_name="scores")
    player = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scores")
    chart = models.ForeignKey(Chart, on_delete=models.PROTECT, related_name="scores")
    value = models.DecimalField(max_digits=20, decimal_places=6)
    grade = models.CharField(max_length=32, blank=True, default="")
    lamp = models.CharField(max_length=32, blank=True, default="")
    data = JSONField(default=dict, blank=True)
    time_achieved = models.DateTimeField(default=timezone.now, db_index=True)
    client_id = models.CharField("client ID", max_length=128, null=True, blank=True)
    date_created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["time_achieved", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["player", "client_id"],
                condition=Q(client_id__isnull=False),
                name="score_unique_client_id",
            )
        ]
        indexes = [models.Index(fields=["session", "time_achieved"], name="score_session_time")]

    def __str__(self) -> str:
        return f"score {self.pk}"


# The event log's, webhooks' and the join throttles' models, imported so that Django registers them.
from . import event_models, webhook_models  # noqa: E402, F401
from .join_models import JoinCodeFailure as JoinCodeFailure  # noqa: E402
from .join_models import JoinPasswordFailure as JoinPasswordFailure  # noqa: E402
