"""What the session admins share: `AdminActor` (a staff member as the services' actor),
`ServiceActionMixin` (an action is one service call per row), the read-only mixins,
`kickable_q` and `kickable_players`, a text-box list filter and the formula-safe CSV writer.
The search and NUL mixins every app's admin uses are in sessions_project/admin_mixins.py.

Also used by the player admin that sessions_app registers (admin/players.py).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, QueryDict

from players_app.models import Player
from sessions_project.admin_mixins import AdminBase, NulSafeMixin
from sessions_project.errors import DomainError

from ..models import (
    SCOPE_ANY,
    GameSession,
    Invite,
    JoinCodeFailure,
    JoinPasswordFailure,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    Team,
    perm,
)

CHANGE_SESSION = "sessions_app.change_gamesession"
SESSION_PARTS = (Membership, Team, Invite, Reservation, JoinPasswordFailure, JoinCodeFailure, PlayerSessionsStamp)


VIEW_SESSION = "sessions_app.view_gamesession"


T = TypeVar("T")


R = TypeVar("R")


class AdminActor:
    """A staff member as the services' `actor`.

    It holds `session:*` while the staff member holds the model permission to change sessions
    in admin, and otherwise exactly the staff member's own permissions: no service needs an
    admin special case, and admin can do no more than its permission says."""

    def __init__(self, user: Player) -> None:
        self.user = user
        self.id = user.pk
        self.uid = user.uid
        self.username = user.username
        self.is_superuser = user.is_superuser

    def has_perm(self, permission: str, obj: Any = None) -> bool:
        if permission == perm(SCOPE_ANY) and self.user.has_perm(CHANGE_SESSION):
            return True
        return self.user.has_perm(permission, obj)

    def __repr__(self) -> str:
        return f"AdminActor({self.username!r})"


def admin_actor(request: HttpRequest) -> AdminActor:
    """The staff member behind an admin request (admin lets only staff players in)."""
    user: object = request.user
    if not isinstance(user, Player):
        raise PermissionDenied
    return AdminActor(user)


def missing_object(model_admin: admin.ModelAdmin[Any], request: HttpRequest, object_id: str) -> HttpResponseRedirect:
    """Admin's own answer to an object that does not exist: a message, then the change list.
    A private ModelAdmin method, so the stubs leave it out."""
    return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)  # type: ignore[attr-defined]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def kickable_q(player: Player) -> Q:
    """Sessions where `session_kick` has something to remove: the player is a member, holds an
    active reservation or has a pending invite."""
    return Q(
        Exists(Membership.objects.filter(session=OuterRef("pk"), player=player))
        | Exists(Reservation.objects.active().filter(session=OuterRef("pk"), player=player))
        | Exists(Invite.objects.pending().filter(session=OuterRef("pk"), player=player))
    )


def kickable_players(sessions: QuerySet[GameSession]) -> QuerySet[Player]:
    """Players a kick could remove from these sessions: members, reserved, invited."""
    session_ids = sessions.order_by().values("pk")
    return Player.objects.filter(
        Exists(Membership.objects.filter(session__in=session_ids, player=OuterRef("pk")))
        | Exists(Reservation.objects.active().filter(session__in=session_ids, player=OuterRef("pk")))
        | Exists(Invite.objects.pending().filter(session__in=session_ids, player=OuterRef("pk")))
    ).order_by("username")


class ServiceActionMixin(AdminBase):
    """Admin actions are one service call per selected row, as the API would make them: a
    refusal (`DomainError`) does not stop the others, and is reported once per reason."""

    def apply_each(
        self,
        request: HttpRequest,
        items: Iterable[T],
        call: Callable[[T], R],
        log: Callable[[T, R], tuple[Any, str] | None] | None = None,
    ) -> tuple[list[R], Counter[str]]:
        """`call(item)` for each item, read in full first (the calls change what it selects).
        Returns the results of the calls that went through and the refusals counted by detail.
        `log(item, result)` gives the object and message to record in the admin history, if any."""
        results: list[R] = []
        refusals: Counter[str] = Counter()
        for item in list(items):
            try:
                result = call(item)
            except DomainError as exc:
                refusals[exc.detail] += 1
                continue
            results.append(result)
            entry = log(item, result) if log is not None else None
            if entry is not None:
                self.log_change(request, *entry)
        return results, refusals

    def report_refusals(
        self, request: HttpRequest, refusals: Counter[str], noun: str = "session", verb: str = "changed"
    ) -> None:
        """One message per distinct refusal, not one per row (an action may touch thousands)."""
        for detail, count in refusals.items():
            self.message_user(request, f"{plural(count, noun)} not {verb}: {detail}", messages.ERROR)


class CascadesSessionPartsMixin(AdminBase):
    """Deleting a session or a player takes its members, teams, invites and reservations
    with it. Those admins refuse deleting rows one by one (that would skip the workflows), so
    they must not count as permissions missing for deleting what they belong to."""

    def get_deleted_objects(
        self, objs: Sequence[Any] | QuerySet[Any], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        parts = {str(m._meta.verbose_name) for m in SESSION_PARTS}
        return deleted, model_count, perms_needed - parts, protected


class ReadOnlyMixin:
    """Rows that change only through the session workflows: shown in admin, never edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewOnlyAdmin(ReadOnlyMixin, NulSafeMixin, admin.ModelAdmin):
    """Rows that change only through the session workflows: listed here, never edited."""


class TextInputFilter(admin.SimpleListFilter):
    """An exact-match text box: for columns with too many values to list as links."""

    template = "admin/input_filter.html"
    field_name = ""

    def lookups(self, request, model_admin):
        return [("", "")]  # a filter with no lookups is not shown

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset

    def choices(self, changelist):
        query_string = changelist.get_query_string(remove=[self.parameter_name, "p"])
        yield {
            "selected": not self.value(),
            "query_string": query_string,
            "display": "All",
            "hidden": list(QueryDict(query_string.lstrip("?")).lists()),
        }


class Echo:
    """A file-like object whose write() hands the line back, for a streamed CSV."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(...)`,
# `@SUM(...)`, `-2+3`); tab and carriage return can hide such a start. Players set names,
# types, workspace ids and usernames, so none of it may reach staff as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell with a formula start gets a leading single quote (OWASP's advice: the
    spreadsheet shows it as text); every other value is written as it is."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


class FormulaSafeWriter:
    """csv.writer whose rows have their text cells neutralised by csv_cell; every CSV
    export of the admin writes through it."""

    def __init__(self, stream: Echo) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> str:
        return self._writer.writerow([csv_cell(value) for value in row])
