"""Admin forms over the session services: they collect input, and the services decide.

`SessionAdminForm` validates like any model form, then hands what changed to
`sessions.session_create` / `sessions.session_update` as its last validation step, so a
refusal from the domain (full, invalid transition, stale version...) shows on the form as an
error instead of a 500, and the services stay the only code that writes a session.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet

from players_app.models import Player
from sessions_project.errors import DomainError

from .api.serializers import MAX_IDLE_TIMEOUT, MAX_TEAM_SIZE, MAX_TEAMS, SessionInputSerializer
from .models import GameSession
from .permissions import Actor
from .services import lifecycle, sessions

# Form fields the services take as they are (the API's snake_case names).
SERVICE_FIELDS = (
    "status",
    "visibility",
    "type",
    "name",
    "desc",
    "highlight",
    "workspace_id",
    "server_uid",
    "num_teams",
    "team_size",
    "idle_timeout",
    "data",
)
# A domain error's field (API spelling) -> the form field that shows it: the serializer's
# camelCase -> snake_case names, and the two form fields named otherwise.
FORM_FIELD_FOR_API_FIELD = {
    **{name: name for name in ("status", "visibility", "type", "name", "desc", "data")},
    **SessionInputSerializer.FIELD_NAMES,
    "hostUid": "host",
    "password": "join_password",
}
# Errors that carry no field but plainly belong to one.
FORM_FIELD_FOR_CODE = {
    "invalid_transition": "status",
    "teams_do_not_fit": "team_size",
    "host_forbidden": "host",
    "host_not_member": "host",
    "customise_forbidden": "name",
}


class SessionAdminForm(forms.ModelForm):
    """Create or change a session through the services. The join password is write-only:
    the form takes a new one (stored hashed by the service) or removes it, never shows it."""

    join_password = forms.CharField(
        label="New join password",
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored as a hash and never shown. Leave empty to keep the current password.",
    )
    clear_join_password = forms.BooleanField(
        label="Remove the join password", required=False, help_text="Anyone may join again without a password."
    )
    expected_version = forms.IntegerField(
        required=False,
        min_value=0,
        widget=forms.HiddenInput,
        help_text="The version this form was read at: a change made meanwhile is refused, not overwritten.",
    )

    # Who the services act for (an AdminActor); set by the ModelAdmin on the form class it
    # makes for each request.
    actor: ClassVar[Actor | None] = None

    class Meta:
        model = GameSession
        fields = ("host", *SERVICE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.committed: GameSession | None = None
        fields = self.fields
        # The API's bounds (its serializer's), so admin cannot store what the API would refuse.
        bounds = {"num_teams": MAX_TEAMS, "team_size": MAX_TEAM_SIZE, "idle_timeout": MAX_IDLE_TIMEOUT}
        for name, maximum in bounds.items():
            if name in fields:
                fields[name].validators.append(MaxValueValidator(maximum))
                fields[name].widget.attrs["max"] = maximum
        if self.instance.pk is None:
            status = fields.get("status")
            if isinstance(status, forms.ChoiceField):
                status.choices = [(s.value, s.label) for s in sessions.CREATE_STATUSES]
            if "idle_timeout" in fields:
                fields["idle_timeout"].initial = settings.SESSION_IDLE_TIMEOUT
        elif "expected_version" in fields:
            fields["expected_version"].initial = self.instance.version

    def clean_data(self) -> dict[str, Any]:
        data = self.cleaned_data.get("data")
        if not isinstance(data, dict):
            raise forms.ValidationError("A JSON object is required.", code="not_object")
        return data

    def clean_name(self) -> str:
        name: str = self.cleaned_data.get("name", "")
        if name and len(name) < 3:
            raise forms.ValidationError("A name has at least 3 characters.", code="min_length")
        return name

    def clean_desc(self) -> str:
        desc: str = self.cleaned_data.get("desc", "")
        if desc and len(desc) < 3:
            raise forms.ValidationError("A description has at least 3 characters.", code="min_length")
        return desc

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("join_password") and cleaned.get("clear_join_password"):
            raise forms.ValidationError("Set a new join password or remove it, not both.", code="password_conflict")
        return cleaned

    def full_clean(self) -> None:
        """Validate, then commit through the services as the last step (see the module doc)."""
        super().full_clean()
        if self.is_bound and not self.errors and self.actor is not None:
            self._commit(self.actor)

    def service_values(self) -> dict[str, Any]:
        """What the services get: every field on create, only the changed ones on update."""
        cleaned = self.cleaned_data
        adding = self.instance.pk is None
        changed = set(self.changed_data)
        values = {name: cleaned[name] for name in SERVICE_FIELDS if name in cleaned and (adding or name in changed)}
        if adding or "host" in changed:
            host = cleaned.get("host")
            values["host_uid"] = host.uid if host else None
        if adding:
            # The host (if any) is the first member; the staff member creating it is not one.
            values["users"] = [values["host_uid"]] if values["host_uid"] else []
        if cleaned.get("join_password"):
            values["password"] = cleaned["join_password"]
        elif cleaned.get("clear_join_password"):
            values["password"] = ""
        return values

    def _commit(self, actor: Actor) -> None:
        values = self.service_values()
        try:
            if self.instance.pk is None:
                self.committed = sessions.session_create(actor=actor, values=values)
            elif values:
                self.committed = sessions.session_update(
                    session_id=self.instance.pk,
                    actor=actor,
                    values=values,
                    expected_version=self.cleaned_data.get("expected_version"),
                )
            else:
                self.committed = self.instance
        except DomainError as exc:
            self._add_domain_error(exc)
            return
        self.instance = self.committed

    def _add_domain_error(self, exc: DomainError) -> None:
        placed = False
        for error in exc.errors or ():
            field = FORM_FIELD_FOR_API_FIELD.get(error.get("field", "").split("[")[0])
            if field in self.fields:
                self.add_error(field, error.get("message") or exc.detail)
                placed = True
        if not placed:
            field = FORM_FIELD_FOR_CODE.get(exc.code)
            self.add_error(field if field in self.fields else None, exc.detail)


class CloseForm(forms.Form):
    """How long the session stays `closing` before it closes (0: close now)."""

    seconds = forms.IntegerField(
        label="Close after (seconds)",
        min_value=0,
        max_value=lifecycle.CLOSE_AFTER_MAX,
        initial=0,
        help_text=f"0 closes now; 1 to {lifecycle.CLOSE_AFTER_MAX} puts the session in closing until then.",
    )

    def __init__(self, *args: Any, minimum: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if minimum:
            field = self.fields["seconds"]
            field.initial = 60
            field.validators.append(MinValueValidator(minimum))
            field.widget.attrs["min"] = minimum
            field.help_text = f"{minimum} to {lifecycle.CLOSE_AFTER_MAX}: the session is closing until then."


class KickForm(forms.Form):
    """The player to remove (membership, reservation and pending invite alike)."""

    player = forms.ModelChoiceField(queryset=Player.objects.none(), to_field_name="uid", empty_label=None)

    def __init__(self, *args: Any, players: QuerySet[Player] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["player"]
        if players is not None and isinstance(field, forms.ModelChoiceField):
            field.queryset = players
