"""Shapes of the sessions API.

Input is validated by explicit DRF serializers. Output is built by `session_document` from a
`.values()` row: the session document is the hot path of every read, so it skips DRF's
per-field machinery; `SessionSerializer` declares the same shape for the OpenAPI schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers

from sessions_app import permissions
from sessions_app.models import LIVE_STATUSES, GameSession, SessionStatus, Visibility
from sessions_app.places import capacity_left, free_places, open_places
from sessions_app.services import documents
from sessions_project.fields import (
    JSONObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictUUIDField,
)
from sessions_project.prepared import Parameter, PreparedRows
from sessions_project.times import iso

if TYPE_CHECKING:
    from sessions_app.permissions import Actor

MAX_TEAMS = 1000
MAX_TEAM_SIZE = 10_000
MAX_IDLE_TIMEOUT = 30 * 24 * 3600


class WholeNumberField(serializers.IntegerField):
    """An integer that must be a JSON number with no fraction (not a string, not a boolean)."""

    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float):
            if not data.is_integer():
                self.fail("invalid")
            data = int(data)
        return super().to_internal_value(data)


def choice_field(choices: Sequence[tuple[str, str]], **kwargs: Any) -> serializers.ChoiceField:
    allowed = ", ".join(value for value, _ in choices)
    return StrictChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not allowed; use one of: {allowed}.'},
        **kwargs,
    )


class SessionInputSerializer(serializers.Serializer[Any]):
    """The members a client may send on create, PUT and PATCH (read-only members are ignored)."""

    data = JSONObjectField(required=False)  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    hostUid = StrictUUIDField(source="host_uid", required=False, allow_null=True)
    invited = serializers.ListField(child=StrictUUIDField(), required=False, max_length=1000)
    numTeams = WholeNumberField(source="num_teams", required=False, min_value=0, max_value=MAX_TEAMS)
    teamSize = WholeNumberField(source="team_size", required=False, min_value=0, max_value=MAX_TEAM_SIZE)
    password = StrictCharField(
        required=False, allow_blank=True, allow_null=True, write_only=True, max_length=128, trim_whitespace=False
    )
    serverUid = StrictUUIDField(source="server_uid", required=False, allow_null=True)
    status = choice_field(SessionStatus.choices, required=False)
    visibility = choice_field(Visibility.choices, required=False)
    users = serializers.ListField(child=StrictUUIDField(), required=False, max_length=10_000)
    type = StrictCharField(required=False, min_length=1, max_length=128)
    name = StrictCharField(required=False, min_length=3, max_length=80)
    desc = StrictCharField(required=False, min_length=3, max_length=120)
    highlight = StrictBooleanField(required=False)
    workspaceId = StrictCharField(source="workspace_id", required=False, allow_blank=True, max_length=255)
    idleTimeout = WholeNumberField(source="idle_timeout", required=False, min_value=0, max_value=MAX_IDLE_TIMEOUT)
    version = WholeNumberField(required=False, min_value=0, help_text="Required on PUT: the version you read.")

    # Members of the body that name something to change (JSON names).
    UPDATABLE = frozenset(
        {
            "data",
            "hostUid",
            "invited",
            "numTeams",
            "teamSize",
            "password",
            "serverUid",
            "status",
            "visibility",
            "users",
            "type",
            "name",
            "desc",
            "highlight",
            "workspaceId",
            "idleTimeout",
        }
    )
    # JSON member -> the name the services and permission checks use.
    FIELD_NAMES = {
        "hostUid": "host_uid",
        "numTeams": "num_teams",
        "teamSize": "team_size",
        "serverUid": "server_uid",
        "workspaceId": "workspace_id",
        "idleTimeout": "idle_timeout",
    }


class TeamSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    name = serializers.CharField()
    players = serializers.ListField(child=serializers.UUIDField())


class SessionSerializer(serializers.Serializer[Any]):
    """The session document (seed 001, camelCase). `password` is never returned."""

    uid = serializers.UUIDField()
    dateCreated = serializers.DateTimeField()
    dateModified = serializers.DateTimeField()
    version = serializers.IntegerField()
    data = serializers.DictField()  # type: ignore[assignment]  # a field, not Serializer.data: see ProblemSerializer.errors
    hostUid = serializers.UUIDField(allow_null=True)
    invited = serializers.ListField(child=serializers.UUIDField(), help_text="Players with a pending invite.")
    numTeams = serializers.IntegerField()
    hasPassword = serializers.BooleanField()
    freePlaces = serializers.IntegerField(
        allow_null=True,
        help_text="Capacity minus members minus active reservations; null: no capacity (unlimited).",
    )
    serverUid = serializers.UUIDField(allow_null=True)
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    teams = TeamSerializer(many=True)
    teamSize = serializers.IntegerField()
    users = serializers.ListField(child=serializers.UUIDField(), help_text="Members, in joining order.")
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    type = serializers.CharField()
    name = serializers.CharField()
    desc = serializers.CharField()
    highlight = serializers.BooleanField()
    workspaceId = serializers.CharField()
    idleTimeout = serializers.IntegerField(help_text="Seconds without a write or heartbeat before it closes; 0: never.")
    closesAt = serializers.DateTimeField(allow_null=True)
    closedAt = serializers.DateTimeField(allow_null=True)
    joinCode = serializers.CharField(
        allow_null=True,
        help_text="The code that joins this session (POST /sessions/join-by-code): shown to its members and "
        "session:* accounts; null for everyone else.",
    )


class SessionCountSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()


class JoinSerializer(serializers.Serializer[Any]):
    password = StrictCharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    team = WholeNumberField(required=False, allow_null=True, min_value=0, help_text="0-based team index.")


# Columns of a session row that the document is built from (one query, no joins but the host).
DOCUMENT_COLUMNS = (
    "id",
    "host_id",
    "uid",
    "date_created",
    "date_modified",
    "version",
    "data",
    "host__uid",
    "invites_doc",
    "num_teams",
    "password_hash",
    "server_uid",
    "status",
    "teams_doc",
    "team_size",
    "users_doc",
    "visibility",
    "type",
    "name",
    "desc",
    "highlight",
    "workspace_id",
    "idle_timeout",
    "closes_at",
    "closed_at",
    "idle_deadline",
    "join_code",
    "reservations_doc",
    "open_places",  # an annotation (document_values): capacity minus members, for freePlaces
)


class Viewer(NamedTuple):
    """Who a document is rendered for: what decides whether it shows the join code."""

    uid: str  # the caller's uid as `users` holds it
    quoted: str  # the same as a JSON string: how it appears in `users` read as raw JSON text
    every_code: bool  # session:* sees every session's code


def viewer_of(user: Actor) -> Viewer:
    uid = str(uuid.UUID(str(user.uid)))
    return Viewer(uid, f'"{uid}"', permissions.is_operator(user))


def document_values(sessions: QuerySet[GameSession]) -> QuerySet[GameSession, dict[str, Any]]:
    """Rows of DOCUMENT_COLUMNS (one annotation: `open_places`)."""
    rows: QuerySet[GameSession, dict[str, Any]] = sessions.annotate(open_places=open_places()).values(*DOCUMENT_COLUMNS)
    return rows


_LIVE = frozenset(status.value for status in LIVE_STATUSES)
_CLOSED = SessionStatus.CLOSED.value


def effective_status(row: dict[str, Any], now: datetime) -> tuple[str, Any]:
    """(status, closedAt) as of now: a live session past closesAt or its idle deadline reads
    as closed, closed at that deadline, before any sweeper has recorded it."""
    status = row["status"]
    if status in _LIVE:
        closes_at, idle_deadline = row["closes_at"], row["idle_deadline"]
        if closes_at is None or (idle_deadline is not None and idle_deadline < closes_at):
            closes_at = idle_deadline
        if closes_at is not None and closes_at <= now:
            return _CLOSED, closes_at
    return status, row["closed_at"]


def session_document(row: dict[str, Any], now: datetime | None = None, viewer: Viewer | None = None) -> dict[str, Any]:
    """The JSON session document from a row of DOCUMENT_COLUMNS, for `viewer` (None: no one
    in particular, who sees no join code). A list passes one `now` for all its rows (this runs
    for every row of every page: it is written for speed).

    The join code is shown to the session's members and session:* accounts: membership is
    read from the row's rendered `users`, decoded (a read by uid), or its raw JSON text (a
    list page: a substring test for the quoted uid, which in a list of uids can only match
    a member), so the rule costs no query and no decoding."""
    now = now or timezone.now()
    users = row["users_doc"]
    if isinstance(users, str):  # raw JSON text (lists.AS_TEXT): answered as stored
        member = viewer is not None and viewer.quoted in users
        users = orjson.Fragment(users)
    else:
        member = viewer is not None and viewer.uid in users
    shows_code = viewer is not None and (member or viewer.every_code)
    status, closed_at = effective_status(row, now)
    host_uid = row["host__uid"]
    server_uid = row["server_uid"]
    invites = row["invites_doc"]
    if invites:
        now_iso = iso(now)
        invited = [i["uid"] for i in invites if i["expiresAt"] is None or i["expiresAt"] > now_iso]
    else:
        invited = []
    return {
        "uid": str(row["uid"]),
        "dateCreated": iso(row["date_created"]),
        "dateModified": iso(row["date_modified"]),
        "version": row["version"],
        "data": row["data"],
        "hostUid": str(host_uid) if host_uid else None,
        "invited": invited,
        "numTeams": row["num_teams"],
        "hasPassword": bool(row["password_hash"]),
        "freePlaces": free_places(row["open_places"], row["reservations_doc"], now),
        "serverUid": str(server_uid) if server_uid else None,
        "status": status,
        "teams": row["teams_doc"],
        "teamSize": row["team_size"],
        "users": users,
        "visibility": row["visibility"],
        "type": row["type"],
        "name": row["name"],
        "desc": row["desc"],
        "highlight": row["highlight"],
        "workspaceId": row["workspace_id"],
        "idleTimeout": row["idle_timeout"],
        "closesAt": iso(row["closes_at"]),
        "closedAt": iso(closed_at) if status == _CLOSED else None,
        "joinCode": row["join_code"] if shows_code else None,
    }


# GET /sessions/{uid}: the document's row by uid, compiled once (see PreparedRows).
SESSION_ROW_BY_UID = PreparedRows(
    lambda uid: document_values(GameSession.objects.filter(uid=uid).order_by())[:1],
    Parameter.for_field(GameSession._meta.get_field("uid"), uuid.UUID(int=1), uuid.UUID(int=2)),
    # Answered as stored; `users_doc` is decoded: the visibility rule reads it.
    raw_json=frozenset({"data", "teams_doc"}),
)


# A write's answer when it must re-read its row (see document_for), compiled once too.
SESSION_ROW_BY_ID = PreparedRows(
    lambda pk: document_values(GameSession.objects.filter(pk=pk).order_by())[:1],
    Parameter.for_field(GameSession._meta.get_field("id"), -101, -102),
)


def session_row(session_id: int) -> dict[str, Any]:
    row = SESSION_ROW_BY_ID.first(session_id)
    if row is None:
        raise GameSession.DoesNotExist(f"No session with id {session_id}.")
    return row


_COMPUTED = frozenset({"host__uid", "open_places"})


def instance_row(session: GameSession, host_uid: Any) -> dict[str, Any]:
    """A row of DOCUMENT_COLUMNS from an instance (its host's uid given)."""
    row = {column: getattr(session, column) for column in DOCUMENT_COLUMNS if column not in _COMPUTED}
    row["host__uid"] = host_uid
    row["open_places"] = capacity_left(session.num_teams, session.team_size, len(session.users_doc))
    return row


def document_for(session: GameSession, viewer: Viewer) -> dict[str, Any]:
    """The document of a session just written, for `viewer`: from the instance when its
    service vouched for it (`documents.vouch`: no query), else re-read (one query)."""
    # (host id, host uid) as the service left them; a host changed since means a re-read.
    vouched = getattr(session, documents.VOUCHED_HOST_UID, None)
    if vouched is not None and vouched[0] == session.host_id:
        return session_document(instance_row(session, vouched[1]), viewer=viewer)
    return session_document(session_row(session.pk), viewer=viewer)
