"""Who may do what to a session. Pure functions over the caller and the session row (no
queries): views call them before validating input (403 comes before 400), and services call
them again under the row lock."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from sessions_project.errors import Forbidden

from .models import PERM_CUSTOMISE, PERM_TRUNCATE, SCOPE_ANY, GameSession, perm

# Members any member of a system (host-less) session may change (seed 001: "any member may
# modify the session data").
SYSTEM_MEMBER_FIELDS = frozenset({"data"})
# Seed 002's customisation: the host with customise_session, or session:*.
CUSTOMISE_FIELDS = frozenset({"name", "desc", "highlight"})


class Permitted(Protocol):
    """Anything holding permissions, an anonymous user included (it holds none)."""

    def has_perm(self, perm: str, /) -> bool: ...


class Actor(Permitted, Protocol):
    """Whom a service acts for: a Player (API, commands) or an AdminActor (admin). What the
    rules read of it: its id and uid (membership, hosting) and its permissions."""

    @property
    def id(self) -> int: ...

    @property
    def uid(self) -> uuid.UUID | str: ...  # an access token carries it as text


def is_operator(user: Permitted) -> bool:
    """session:* accounts (game servers, operators; superusers hold every permission)."""
    return user.has_perm(perm(SCOPE_ANY))


def is_host(user: Actor, session: GameSession) -> bool:
    return session.host_id is not None and session.host_id == user.id


def is_member(user: Actor, session: GameSession) -> bool:
    """From the session's rendered `users` (kept in step with Membership under the row lock)."""
    return str(user.uid) in session.users_doc


def authorize_session_update(user: Actor, session: GameSession, fields: set[str]) -> None:
    """403 unless the caller may change these members of the session."""
    if is_operator(user):
        return
    if fields & CUSTOMISE_FIELDS and not (is_host(user, session) and user.has_perm(perm(PERM_CUSTOMISE))):
        raise Forbidden(
            "Only the session's host holding customise_session may change name, desc or highlight.",
            code="customise_forbidden",
        )
    if is_host(user, session):
        return
    if session.host_id is None and is_member(user, session) and fields <= SYSTEM_MEMBER_FIELDS:
        return
    if session.host_id is None:
        raise Forbidden("In a session without a host, members may change only its data.", code="not_host")
    raise Forbidden("Only the session's host may change it.", code="not_host")


def _same_uid(value: Any, uid: str) -> bool:
    try:
        return str(uuid.UUID(str(value))) == uid
    except ValueError:
        return False


def authorize_session_create(user: Actor, body: dict[str, Any]) -> None:
    """403 before the body is validated: only session:* accounts may name a host other than
    themselves (or none) or put other players in a new session. Looks at the raw body, so a
    malformed hostUid or users from anyone else is refused, not diagnosed."""
    if is_operator(user):
        return
    own_uid = str(user.uid)
    if "hostUid" in body and not _same_uid(body["hostUid"], own_uid):
        raise Forbidden("Only session:* accounts may set hostUid to someone else.", code="host_forbidden")
    users = body.get("users")
    if users is not None and not (isinstance(users, list) and all(_same_uid(u, own_uid) for u in users)):
        raise Forbidden("Only session:* accounts may create a session with other users in it.", code="users_forbidden")
    if "serverUid" in body:
        authorize_server_uid(user, None, body["serverUid"])


def authorize_server_uid(user: Actor, current: uuid.UUID | None, value: Any) -> None:
    """Only session:* accounts (game servers) may set serverUid to anything but its current
    value: a player naming a server would appear in that server's `?serverUid=` list. Any
    spelling of the current uid (or null for none) is allowed; anything else, malformed
    included, is refused, not diagnosed."""
    if is_operator(user):
        return
    if value is None and current is None:
        return
    if value is not None and current is not None and _same_uid(value, str(current)):
        return
    raise Forbidden("Only session:* accounts may set serverUid.", code="server_uid_forbidden")


def authorize_host_removal(user: Actor) -> None:
    """Only session:* accounts may leave a hosted session without a host (hostUid null)."""
    if not is_operator(user):
        raise Forbidden("Only session:* accounts may remove the host.", code="host_forbidden")


def authorize_session_manage(user: Actor, session: GameSession) -> None:
    """Delete, close, invite, reserve, kick, move players: the host or session:*."""
    if not (is_operator(user) or is_host(user, session)):
        raise Forbidden("Only the session's host may do this.", code="not_host")


def authorize_heartbeat(user: Actor, session: GameSession) -> None:
    """The host, a member of a system session, or session:* keep a session alive."""
    if is_operator(user) or is_host(user, session):
        return
    if session.host_id is None and is_member(user, session):
        return
    raise Forbidden("Only the host (or, without a host, a member) may keep the session alive.", code="not_host")


def names_self(user: Actor, player_uid: Any) -> bool:
    """A score's `player` absent, null or the caller's own uid (in any spelling of it)."""
    if player_uid is None:
        return True
    try:
        return uuid.UUID(str(player_uid)) == uuid.UUID(str(user.uid))
    except ValueError:
        return False


def authorize_score_submit(user: Actor, session: GameSession, player_uid: Any) -> None:
    """A member submits its own scores; only session:* reports another player's (`player`)."""
    if not names_self(user, player_uid):
        if not is_operator(user):
            raise Forbidden("Only session:* accounts may report another player's score.", code="player_forbidden")
        return
    if not is_member(user, session):
        raise Forbidden("Only the session's members may submit scores to it.", code="not_member")


class IsOperatorOrReadOnly(BasePermission):
    """The catalog (songs, charts): every player reads it, session:* accounts write it."""

    message = "Only session:* accounts may add or change songs and charts."
    code = "catalog_forbidden"

    def has_permission(self, request: Request, view: APIView) -> bool:
        # On one song or chart, 404 comes before 403: has_object_permission decides there.
        return request.method in SAFE_METHODS or "pk" in view.kwargs or is_operator(request.user)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return request.method in SAFE_METHODS or is_operator(request.user)


class CanTruncateSessions(BasePermission):
    """DELETE /sessions needs its own permission; session:* alone is not enough."""

    message = "Truncating sessions needs the truncate_sessions permission."
    code = "truncate_forbidden"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm(perm(PERM_TRUNCATE)))
