"""Django admin for staff: every model registered, sessions changed only through the
services (version, capacity, host hand-over, teams), actions and their intermediate forms,
domain errors as messages, the admin log, groups and scopes, the dashboard, and change lists
whose query count does not grow with the page."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import connection, models
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from players_app.models import Player
from sessions_app.admin.dashboard import build_dashboard
from sessions_app.admin.mixins import AdminActor
from sessions_app.models import (
    PERM_CUSTOMISE,
    PERM_TRUNCATE,
    SCOPE_ANY,
    SCOPE_READ_PLAYER_ANY,
    SCOPE_READ_PLAYER_SELF,
    Chart,
    GameSession,
    Invite,
    InviteState,
    JoinPasswordFailure,
    Membership,
    PlayerSessionsStamp,
    Reservation,
    Score,
    SessionStatus,
    Song,
    Team,
    perm,
)
from sessions_app.services.invites import invite_create, reservation_create
from sessions_app.services.join_passwords import check_join_password
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_update
from sessions_project.times import iso

from .conftest import SESSIONS, change_url, row
from .factories import ChartFactory, PlayerFactory, ScoreFactory

pytestmark = pytest.mark.django_db


def member_uids(session) -> list[str]:
    return row(session).users_doc


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def operator(db):
    """A staff member who may change sessions and delete players in admin (not a superuser, no API
    scope)."""
    player = PlayerFactory(username="operator", is_staff=True)
    codenames = [f"{verb}_{model}" for verb in ("view", "add", "change", "delete") for model in ("gamesession",)]
    codenames += ["view_membership", "view_team", "view_invite", "view_reservation", "view_player", "delete_player"]
    player.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return Player.objects.get(pk=player.pk)


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def form_data(response, **changes) -> dict:
    """The POST body of the change form as rendered, with `changes` (None drops a field)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def bulk_players(count: int, prefix: str = "p") -> list[Player]:
    batch = uuid.uuid4().hex[:6]  # each call its own usernames
    return Player.objects.bulk_create(
        [Player(username=f"{prefix}{batch}-{i:05d}", uid=uuid.uuid4(), password="!") for i in range(count)]
    )


def bulk_sessions(count: int) -> list[GameSession]:
    """`count` sessions, each with its own host and member, written directly (no services):
    enough rows that a query per row would show."""
    hosts = bulk_players(count, prefix="h")
    sessions = GameSession.objects.bulk_create(
        [
            GameSession(
                host=host,
                creator=host,
                name=f"session {i}",
                num_teams=2,
                team_size=4,
                users_doc=[str(host.uid)],
                workspace_id=f"ws{i % 7}",
                type=f"type{i % 3}",
            )
            for i, host in enumerate(hosts)
        ]
    )
    Membership.objects.bulk_create([Membership(session=s, player=h) for s, h in zip(sessions, hosts, strict=True)])
    return sessions


def act(client, action: str, sessions, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in sessions], **extra}
    return client.post(SESSIONS, data, follow=True)


def count_queries(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


# --- registration -----------------------------------------------------------------------------


def test_every_model_of_the_project_is_registered():
    models = [*apps.get_app_config("sessions_app").get_models(), *apps.get_app_config("players_app").get_models()]
    missing = [m.__name__ for m in models if m not in admin.site._registry]
    assert missing == []


@pytest.mark.parametrize(
    "model", [m for m in apps.get_app_config("sessions_app").get_models() if m is not GameSession and m is not Player]
)
def test_every_session_part_has_useful_columns_and_reads_related_rows_in_the_page_query(model):
    model_admin = admin.site._registry[model]
    assert len(model_admin.list_display) > 1
    assert model_admin.show_full_result_count is False
    foreign_keys = [f.name for f in model._meta.get_fields() if f.many_to_one and f.name in model_admin.list_display]
    for name in foreign_keys:
        assert any(s == name or s.startswith(f"{name}__") for s in model_admin.list_select_related), name


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        SESSIONS,
        f"{SESSIONS}add/",
        "/admin/players_app/player/",
        "/admin/players_app/player/add/",
        "/admin/sessions_app/membership/",
        "/admin/sessions_app/team/",
        "/admin/sessions_app/invite/",
        "/admin/sessions_app/reservation/",
        "/admin/sessions_app/joinpasswordfailure/",
        "/admin/sessions_app/joincodefailure/",
        "/admin/sessions_app/playersessionsstamp/",
        "/admin/sessions_app/song/",
        "/admin/sessions_app/chart/",
        "/admin/sessions_app/score/",
        "/admin/auth/group/",
    ],
)
def test_admin_pages_render_for_a_superuser(admin_client, url, host, member, make_session):
    session = make_session(host, num_teams=2)
    session_join(session_id=session.pk, actor=member)
    ScoreFactory(session=session, player=host)
    response = admin_client.get(url)
    assert response.status_code == 200


def test_change_pages_of_every_part_render(admin_client, host, member, outsider, make_session):
    session = make_session(host, num_teams=2, invited=[str(outsider.uid)])
    session_join(session_id=session.pk, actor=member)
    reservation_create(session_id=session.pk, actor=host, player_uid=str(PlayerFactory().uid))
    JoinPasswordFailure.objects.create(session=session, player=outsider)
    score = ScoreFactory(session=session, player=host)
    objects = [
        session,
        host,
        Membership.objects.first(),
        Team.objects.first(),
        Invite.objects.first(),
        Reservation.objects.first(),
        JoinPasswordFailure.objects.first(),
        score,
        score.chart,
        score.chart.song,
    ]
    for obj in objects:
        opts = obj._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert admin_client.get(url).status_code == 200, url


# --- groups and scopes ----------------------------------------------------------------------


def test_game_servers_group_holds_session_any_after_migrate():
    game_servers = Group.objects.get(name="Game servers")
    assert list(game_servers.permissions.values_list("codename", flat=True)) == [SCOPE_ANY]
    players = Group.objects.get(name="Players")
    assert set(players.permissions.values_list("codename", flat=True)) == {SCOPE_READ_PLAYER_SELF, PERM_CUSTOMISE}


def test_scopes_are_grantable_to_groups_in_admin(admin_client):
    """The group form offers every scope; granting one gives its members the API power."""
    scopes = [SCOPE_ANY, SCOPE_READ_PLAYER_ANY, SCOPE_READ_PLAYER_SELF, PERM_CUSTOMISE, PERM_TRUNCATE]
    response = admin_client.get("/admin/auth/group/add/")
    offered = {p.codename for p in response.context["adminform"].form.fields["permissions"].queryset}
    assert set(scopes) <= offered

    wanted = Permission.objects.filter(codename__in=[SCOPE_READ_PLAYER_ANY, PERM_TRUNCATE])
    created = admin_client.post(
        "/admin/auth/group/add/", {"name": "Support", "permissions": [p.pk for p in wanted]}, follow=True
    )
    assert created.status_code == 200
    support = Group.objects.get(name="Support")
    player = PlayerFactory()
    player.groups.add(support)
    player = Player.objects.get(pk=player.pk)
    assert player.has_perm(perm(SCOPE_READ_PLAYER_ANY))
    assert player.has_perm(perm(PERM_TRUNCATE))
    assert not player.has_perm(perm(SCOPE_ANY))


# --- players ----------------------------------------------------------------------------------


def test_a_player_added_in_admin_joins_the_players_group(admin_client):
    response = admin_client.post(
        "/admin/players_app/player/add/",
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a-Long-pass-42",
            "password2": "a-Long-pass-42",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    player = Player.objects.get(username="newcomer")
    assert list(player.groups.values_list("name", flat=True)) == ["Players"]
    assert player.check_password("a-Long-pass-42")
    assert LogEntry.objects.get(object_id=str(player.pk)).action_flag == ADDITION


def test_a_players_uid_is_shown_read_only(admin_client, member):
    response = admin_client.get(f"/admin/players_app/player/{member.pk}/change/")
    assert str(member.uid) in response.content.decode()
    assert "uid" not in response.context["adminform"].form.fields


def test_deleting_a_player_removes_it_from_its_live_sessions_through_the_service(
    admin_client, host, member, make_session
):
    """The host leaves by `session_kick`: the host is handed over and `version` moves."""
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    version = row(session).version
    response = admin_client.post(f"/admin/players_app/player/{host.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Player.objects.filter(pk=host.pk).exists()
    after = row(session)
    assert after.host_id == member.pk
    assert after.users_doc == [str(member.uid)]
    assert after.version == version + 1


# --- the session form: every save goes through the services -----------------------------------


def test_adding_a_session_goes_through_session_create(operator_client, operator, host):
    response = operator_client.post(
        f"{SESSIONS}add/",
        {
            "name": "Friday cup",
            "desc": "",
            "host": host.pk,
            "status": "open",
            "visibility": "private",
            "num_teams": "2",
            "team_size": "3",
            "join_password": "s3cret",
            "type": "ranked",
            "workspace_id": "eu",
            "server_uid": "",
            "data": "{}",
            "idle_timeout": "600",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    session = GameSession.objects.get(name="Friday cup")
    # The service's rules: host as first member (the operator is not one), two teams made,
    # the password hashed, version 0, the creator recorded.
    assert session.users_doc == [str(host.uid)]
    assert [t["name"] for t in session.teams_doc] == ["Team 1", "Team 2"]
    assert session.teams_doc[0]["players"] == [str(host.uid)]
    assert session.host_id == host.pk
    assert session.creator_id == operator.pk
    assert check_join_password("s3cret", session.password_hash)
    assert "s3cret" not in session.password_hash
    assert (session.version, session.visibility, session.type, session.idle_timeout) == (0, "private", "ranked", 600)
    entry = LogEntry.objects.get(object_id=str(session.pk))
    assert entry.action_flag == ADDITION
    assert entry.user_id == operator.pk


def test_a_new_session_starts_open_or_in_progress_only(operator_client):
    form = operator_client.get(f"{SESSIONS}add/").context["adminform"].form
    assert [value for value, _ in form.fields["status"].choices] == ["open", "in_progress"]


def test_changing_a_session_goes_through_session_update(operator_client, operator, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)
    session_join(session_id=session.pk, actor=member)
    page = operator_client.get(change_url(session))
    response = operator_client.post(
        change_url(session), form_data(page, name="Renamed", num_teams="3", host=str(member.pk))
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    after = row(session)
    assert after.name == "Renamed"
    assert after.host_id == member.pk  # host handed to a member
    assert [t["index"] for t in after.teams_doc] == [0, 1, 2]  # teams resized by the service
    assert after.version == 2  # create 0, join 1, this save 2: one bump for the whole change
    entry = LogEntry.objects.filter(object_id=str(session.pk)).get()
    assert entry.action_flag == CHANGE
    assert "Name" in entry.get_change_message()


def test_saving_an_unchanged_form_does_not_bump_the_version(operator_client, host, make_session):
    session = make_session(host)
    page = operator_client.get(change_url(session))
    assert operator_client.post(change_url(session), form_data(page)).status_code == 302
    assert row(session).version == 0


def test_teams_that_no_longer_fit_are_a_form_error_not_a_500(operator_client, host, member, make_session):
    session = make_session(host, num_teams=2, team_size=2)
    session_join(session_id=session.pk, actor=member)
    page = operator_client.get(change_url(session))
    response = operator_client.post(change_url(session), form_data(page, num_teams="1", team_size="1"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "do not fit" in errors["team_size"][0]
    assert (row(session).num_teams, row(session).version) == (2, 1)


def test_reopening_a_closed_session_is_refused_on_the_status_field(operator_client, host, make_session):
    session = make_session(host)
    session_close(session_id=session.pk, actor=host, close_after=0)
    page = operator_client.get(change_url(session))
    response = operator_client.post(change_url(session), form_data(page, status="open"))
    assert response.status_code == 200
    assert "nothing reopens it" in response.context["adminform"].form.errors["status"][0]
    assert row(session).status == SessionStatus.CLOSED


def test_a_change_made_meanwhile_is_not_overwritten(operator_client, host, member, make_session):
    session = make_session(host)
    page = operator_client.get(change_url(session))
    session_join(session_id=session.pk, actor=member)  # version 0 -> 1 while the form is open
    response = operator_client.post(change_url(session), form_data(page, name="Too late"))
    assert response.status_code == 200
    assert "version 1, not 0" in str(response.context["adminform"].form.non_field_errors())
    assert row(session).name == ""


def test_the_join_password_is_write_only(operator_client, host, make_session):
    session = make_session(host, password="old-secret")
    page = operator_client.get(change_url(session))
    html = page.content.decode()
    assert row(session).password_hash not in html
    assert "old-secret" not in html

    assert operator_client.post(change_url(session), form_data(page, join_password="new-secret")).status_code == 302
    assert check_join_password("new-secret", row(session).password_hash)
    assert "new-secret" not in operator_client.get(change_url(session)).content.decode()

    page = operator_client.get(change_url(session))
    assert operator_client.post(change_url(session), form_data(page, clear_join_password="on")).status_code == 302
    assert row(session).password_hash == ""


def test_the_session_page_shows_members_teams_invites_and_reservations(
    operator_client, host, member, outsider, make_session
):
    session = make_session(host, num_teams=2, invited=[str(outsider.uid)])
    session_join(session_id=session.pk, actor=member)
    reserved = PlayerFactory(username="reserved")
    reservation_create(session_id=session.pk, actor=host, player_uid=str(reserved.uid))
    response = operator_client.get(change_url(session))
    inlines = {f.formset.prefix: [form.original for form in f] for f in response.context["inline_admin_formsets"]}
    assert [m.player for m in inlines["memberships"]] == [host, member]
    assert [t.name for t in inlines["teams"]] == ["Team 1", "Team 2"]
    assert [i.player for i in inlines["invites"]] == [outsider]
    assert [r.player for r in inlines["reservations"]] == [reserved]
    # Read-only: nothing to add, change or delete in them.
    for inline in response.context["inline_admin_formsets"]:
        assert not inline.has_add_permission
        assert not inline.has_change_permission
        assert not inline.has_delete_permission


def test_the_session_page_costs_the_same_queries_whatever_the_session_holds(
    operator_client, host, game_server, make_session
):
    small = make_session(host, num_teams=2)
    players = bulk_players(40)
    big = make_session(game_server, num_teams=4, users=[str(p.uid) for p in players], host_uid=str(players[0].uid))
    for _ in range(5):
        invite_create(session_id=big.pk, actor=game_server, player_uid=str(PlayerFactory().uid))
        reservation_create(session_id=big.pk, actor=game_server, player_uid=str(PlayerFactory().uid))
    assert len(row(big).users_doc) == 40
    small_count, _ = count_queries(operator_client, change_url(small))
    big_count, queries = count_queries(operator_client, change_url(big))
    assert big_count == small_count, "\n".join(queries)


def test_deleting_sessions_goes_through_session_delete(operator_client, operator, host, member, make_session):
    """One from its page and two with the delete action, members and teams with them."""
    sessions = [make_session(host, num_teams=2) for _ in range(3)]
    session_join(session_id=sessions[0].pk, actor=member)
    page = operator_client.post(f"{SESSIONS}{sessions[0].pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    action = act(operator_client, "delete_selected", sessions[1:], post="yes")
    assert "Successfully deleted 2 sessions." in messages_of(action)
    assert not GameSession.objects.exists()
    assert not Membership.objects.exists()
    assert not Team.objects.exists()
    assert LogEntry.objects.filter(action_flag=DELETION, user=operator).count() == 3


# --- actions ----------------------------------------------------------------------------------


def test_close_now_closes_through_session_close_and_logs_it(operator_client, operator, host, make_session, clock):
    sessions = [make_session(host), make_session(host)]
    response = act(operator_client, "close_now", sessions)
    assert "Closed 2 sessions." in messages_of(response)
    for session in sessions:
        after = row(session)
        assert (after.status, after.closed_at, after.version) == ("closed", clock.now, 1)
        entry = LogEntry.objects.get(object_id=str(session.pk))
        assert (entry.action_flag, entry.user_id) == (CHANGE, operator.pk)
        assert "Closed now" in entry.get_change_message()


def test_close_after_asks_for_the_seconds_then_puts_sessions_in_closing(operator_client, host, make_session, clock):
    session = make_session(host)
    form_page = act(operator_client, "close_after", [session])
    assert form_page.templates[0].name == "admin/sessions_app/gamesession/action_form.html"
    assert "seconds" in form_page.context["form"].fields
    assert row(session).status == "open"  # nothing happens before the form is sent

    refused = act(operator_client, "close_after", [session], apply="Close", seconds="0")
    assert refused.context["form"].errors["seconds"]

    response = act(operator_client, "close_after", [session], apply="Close", seconds="90")
    after = row(session)
    assert (after.status, after.closes_at, after.version) == ("closing", clock.now + timedelta(seconds=90), 1)
    assert "Set to close in 90 s: 1 session." in messages_of(response)


def test_a_refusal_by_the_service_is_an_error_message(operator_client, host, member, make_session):
    """Kicking a member of a closed session: the service says 409, admin shows it."""
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    session_close(session_id=session.pk, actor=host, close_after=0)
    response = act(operator_client, "remove_player", [session], apply="Remove", player=str(member.uid))
    assert response.status_code == 200
    assert any("not changed: The session is closed" in m for m in messages_of(response))
    assert str(member.uid) in member_uids(session)


def test_remove_a_player_offers_the_sessions_players_and_kicks_through_the_service(
    operator_client, host, member, outsider, make_session
):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    form_page = act(operator_client, "remove_player", [session])
    assert list(form_page.context["form"].fields["player"].queryset) == [host, member]

    response = act(operator_client, "remove_player", [session], apply="Remove", player=str(host.uid))
    assert "Removed host from 1 session." in messages_of(response)
    after = row(session)
    assert after.users_doc == [str(member.uid)]
    assert after.host_id == member.pk  # host handed over
    assert after.version == 2
    assert "Removed player host" in LogEntry.objects.get(object_id=str(session.pk)).get_change_message()


def test_export_csv_streams_the_selected_sessions(operator_client, host, member, make_session, clock):
    first = make_session(host, name="First")
    session_join(session_id=first.pk, actor=member)
    clock.advance(seconds=1)  # the CSV is in creation order
    second = make_session(member, name="Second")
    session_close(session_id=second.pk, actor=member, close_after=0)
    response = operator_client.post(SESSIONS, {"action": "export_csv", "_selected_action": [first.pk, second.pk]})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["name"], r["status"], r["members"], r["hostUsername"]) for r in rows] == [
        ("First", "open", "2", "host"),
        ("Second", "closed", "1", "member"),
    ]
    assert rows[0]["uid"] == str(first.uid)


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"],
)
def test_export_csv_neutralises_player_text_a_spreadsheet_would_run(operator_client, make_session, text):
    player = PlayerFactory(username=text)  # the factory skips the username rules: the worst case
    session = make_session(player, name=text, type=text, workspace_id=text)

    response = operator_client.post(SESSIONS, {"action": "export_csv", "_selected_action": [session.pk]})

    (cells,) = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    for column in ("name", "type", "workspaceId", "hostUsername"):
        assert cells[column] == "'" + text, column
    assert cells["uid"] == str(session.uid)


def test_export_csv_keeps_harmless_text_as_it_is(operator_client, host, make_session):
    session = make_session(host, name="Friday night, 8-10 =)", type="duel")

    response = operator_client.post(SESSIONS, {"action": "export_csv", "_selected_action": [session.pk]})

    (cells,) = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert (cells["name"], cells["type"], cells["hostUsername"]) == ("Friday night, 8-10 =)", "duel", "host")


def test_actions_need_the_change_permission(client, host, make_session):
    viewer = PlayerFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_gamesession"))
    client.force_login(viewer)
    make_session(host)
    actions = [name for name, _ in client.get(SESSIONS).context["action_form"].fields["action"].choices if name]
    assert actions == ["export_csv"]


def test_the_session_page_buttons_close_and_remove_a_player(operator_client, host, member, make_session, clock):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    page = operator_client.get(change_url(session)).content.decode()
    assert f"{SESSIONS}{session.pk}/close/" in page
    assert f"{SESSIONS}{session.pk}/remove-player/" in page

    kick_form = operator_client.get(f"{SESSIONS}{session.pk}/remove-player/?player={member.uid}")
    assert kick_form.context["form"]["player"].value() == str(member.uid)
    done = operator_client.post(f"{SESSIONS}{session.pk}/remove-player/", {"player": str(member.uid)}, follow=True)
    assert done.redirect_chain[-1][0] == change_url(session)
    assert member_uids(session) == [str(host.uid)]

    done = operator_client.post(f"{SESSIONS}{session.pk}/close/", {"seconds": "0"}, follow=True)
    assert "Closed 1 session." in messages_of(done)
    assert row(session).status == "closed"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("remove-player/", {"player": "not-a-uuid"}),
        ("remove-player/", {"player": str(uuid.UUID(int=7))}),
        ("remove-player/", {}),
        ("close/", {"seconds": "soon"}),
        ("close/", {"seconds": "3601"}),
        ("close/", {"seconds": "-1"}),
    ],
)
def test_bad_input_to_the_session_buttons_is_a_form_error(operator_client, host, make_session, path, data):
    session = make_session(host)
    response = operator_client.post(f"{SESSIONS}{session.pk}/{path}", data)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert row(session).version == 0


@pytest.mark.parametrize(
    "query",
    [
        "?status=bogus",
        "?workspace=%00",
        "?type=%00",
        "?status=%00",
        "?q=%00",
        "?q=" + "x" * 500,
        "?host__isempty=maybe",
        "?o=99",
        "?p=999",
    ],
)
def test_odd_change_list_parameters_never_give_a_500(operator_client, host, make_session, query):
    make_session(host)
    assert operator_client.get(SESSIONS + query).status_code in {200, 302}


def test_staff_without_the_change_permission_cannot_use_the_session_buttons(client, host, make_session):
    viewer = PlayerFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_gamesession"))
    client.force_login(viewer)
    session = make_session(host)
    assert client.post(f"{SESSIONS}{session.pk}/close/", {"seconds": "0"}).status_code == 403
    assert row(session).status == "open"


def test_membership_invite_and_reservation_actions_use_the_services(operator_client, host, member, make_session):
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    invited, reserved = PlayerFactory(), PlayerFactory()
    invite = invite_create(session_id=session.pk, actor=host, player_uid=str(invited.uid))
    reservation = reservation_create(session_id=session.pk, actor=host, player_uid=str(reserved.uid))
    version = row(session).version

    operator_client.post(
        "/admin/sessions_app/invite/", {"action": "revoke", "_selected_action": [invite.pk]}, follow=True
    )
    assert Invite.objects.get(pk=invite.pk).state == InviteState.REVOKED
    operator_client.post(
        "/admin/sessions_app/reservation/", {"action": "cancel", "_selected_action": [reservation.pk]}, follow=True
    )
    assert not Reservation.objects.filter(pk=reservation.pk).exists()
    membership = Membership.objects.get(session=session, player=member)
    operator_client.post(
        "/admin/sessions_app/membership/",
        {"action": "remove_from_session", "_selected_action": [membership.pk]},
        follow=True,
    )
    after = row(session)
    assert after.users_doc == [str(host.uid)]
    assert after.invites_doc == []
    assert after.version == version + 2  # the revoke and the kick; a reservation is not in the document


# --- AdminActor ---------------------------------------------------------------------------------


def test_admin_actor_holds_session_any_only_with_the_change_permission(operator, staff):
    assert AdminActor(operator).has_perm(perm(SCOPE_ANY))
    assert not AdminActor(operator).has_perm(perm(PERM_TRUNCATE))
    assert not AdminActor(staff).has_perm(perm(SCOPE_ANY))
    actor = AdminActor(operator)
    assert (actor.id, actor.uid, actor.username, actor.is_superuser) == (operator.pk, operator.uid, "operator", False)


# --- finding sessions -------------------------------------------------------------------------


def test_search_by_any_uid_or_by_name(operator_client, host, member, make_session):
    wanted = make_session(host, name="Needle")
    session_join(session_id=wanted.pk, actor=member)
    other = make_session(PlayerFactory(), name="Haystack")

    def found(term):
        return list(operator_client.get(SESSIONS, {"q": term}).context["cl"].result_list)

    assert found(str(wanted.uid)) == [wanted]
    assert found(str(member.uid)) == [wanted]  # a member's uid
    assert found(str(host.uid).upper()) == [wanted]  # the host's, in capitals
    assert found("needle") == [wanted]
    assert found("hays") == [other]
    assert found(str(wanted.uid)[:8]) == []  # part of a uid: no match, no error


def test_the_status_filter_uses_the_status_as_the_api_reports_it(operator_client, host, make_session, clock):
    live = make_session(host)
    due = make_session(host)
    session_close(session_id=due.pk, actor=host, close_after=30)
    clock.advance(seconds=31)  # `due` is past closesAt: closed, though not yet recorded
    assert row(due).status == "closing"

    def listed(status):
        return set(operator_client.get(SESSIONS, {"status": status}).context["cl"].result_list)

    assert listed("open") == {live}
    assert listed("closing") == set()
    assert listed("closed") == {due}


# --- constant queries on change lists ---------------------------------------------------------


@pytest.mark.parametrize("url", [SESSIONS, f"{SESSIONS}?status=open&o=-2"])
def test_the_session_list_costs_the_same_queries_for_100_and_1000_rows(admin_client, url, monkeypatch):
    """Every row of the page is shown (list_per_page raised to the row count)."""
    model_admin = admin.site._registry[GameSession]
    bulk_sessions(100)
    monkeypatch.setattr(model_admin, "list_per_page", 100)
    hundred, _ = count_queries(admin_client, url)
    bulk_sessions(900)
    monkeypatch.setattr(model_admin, "list_per_page", 1000)
    thousand, queries = count_queries(admin_client, url)
    assert thousand == hundred, "\n".join(queries)
    # django_session, the user, the filtered count, the page's rows with their hosts, the
    # "type" filter's values, the date hierarchy's date range and its dates.
    assert hundred == 7, "\n".join(queries)


def test_the_player_list_costs_the_same_queries_for_100_and_1000_rows(admin_client, monkeypatch):
    model_admin = admin.site._registry[Player]
    bulk_players(99)  # and admin_user: 100
    monkeypatch.setattr(model_admin, "list_per_page", 100)
    hundred, _ = count_queries(admin_client, "/admin/players_app/player/")
    bulk_players(900, prefix="q")
    monkeypatch.setattr(model_admin, "list_per_page", 1000)
    thousand, queries = count_queries(admin_client, "/admin/players_app/player/")
    assert thousand == hundred, "\n".join(queries)
    # django_session, the user, the filtered count, the page, the groups filter's groups,
    # the date hierarchy's date range and its dates.
    assert hundred == 7, "\n".join(queries)


def _memberships(count):
    sessions = bulk_sessions(count)
    return Membership.objects.filter(session__in=sessions)


def _invites(count):
    sessions = bulk_sessions(count)
    players = bulk_players(count, prefix=f"i{count}-")
    Invite.objects.bulk_create(
        [Invite(session=s, player=p, inviting_player=s.host) for s, p in zip(sessions, players, strict=True)]
    )


def _reservations(count):
    sessions = bulk_sessions(count)
    players = bulk_players(count, prefix=f"r{count}-")
    expires = timezone.now() + timedelta(minutes=5)
    Reservation.objects.bulk_create(
        [
            Reservation(session=s, player=p, created_by=s.host, expires_at=expires)
            for s, p in zip(sessions, players, strict=True)
        ]
    )


def _scores(count):
    sessions = bulk_sessions(count)
    charts = [ChartFactory() for _ in range(3)]
    Score.objects.bulk_create(
        [Score(session=s, player=s.host, chart=charts[i % 3], value=i) for i, s in enumerate(sessions)]
    )


def _teams(count):
    sessions = bulk_sessions(count)
    Team.objects.bulk_create([Team(session=s, index=0, name="Team 1") for s in sessions])


def _failures(count):
    sessions = bulk_sessions(count)
    JoinPasswordFailure.objects.bulk_create([JoinPasswordFailure(session=s, player=s.host) for s in sessions])


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/admin/sessions_app/membership/", _memberships),
        ("/admin/sessions_app/invite/", _invites),
        ("/admin/sessions_app/reservation/", _reservations),
        ("/admin/sessions_app/score/", _scores),
        ("/admin/sessions_app/team/", _teams),
        ("/admin/sessions_app/joinpasswordfailure/", _failures),
    ],
)
def test_the_other_big_lists_cost_the_same_queries_whatever_the_page_holds(admin_client, url, make):
    make(5)
    few, _ = count_queries(admin_client, url)
    make(95)
    many, queries = count_queries(admin_client, url)
    assert many == few, "\n".join(queries)


# --- the dashboard ----------------------------------------------------------------------------


def test_the_dashboard_counts_sessions_players_and_joins(host, member, outsider, make_session, clock):
    """Given sessions in each status (one only due), members, and joins at several times."""
    # Start ten minutes into an hour, so the hourly buckets below never depend on the wall clock.
    clock.now = clock.now.replace(minute=10, second=0, microsecond=0)
    open_one = make_session(host, idle_timeout=0)
    clock.advance(minutes=61)
    session_join(session_id=open_one.pk, actor=member)  # a join in the last hour
    playing = make_session(outsider)
    session_update(session_id=playing.pk, actor=outsider, values={"status": "in_progress"})
    closing = make_session(host)
    session_close(session_id=closing.pk, actor=host, close_after=600)
    due = make_session(member)
    session_close(session_id=due.pk, actor=member, close_after=1)
    closed = make_session(outsider)
    session_close(session_id=closed.pk, actor=outsider, close_after=0)
    clock.advance(seconds=2)

    dashboard = build_dashboard()

    assert {s.status: s.count for s in dashboard.by_status} == {
        "open": 1,
        "in_progress": 1,
        "closing": 1,
        "closed": 2,  # the due one reads as closed
    }
    assert dashboard.total == 5
    assert dashboard.live == 3
    # host (open, closing), member (open), outsider (in progress): the closed ones do not count
    assert dashboard.players_in_sessions == 3
    # Joins in the last hour: member into open_one and the creators of the four later sessions
    # (host's membership of open_one is 61 minutes old).
    assert dashboard.joins_last_hour == 5
    assert len(dashboard.hourly) == 24
    assert dashboard.hourly[-1].count == 4
    assert dashboard.hourly[-2].count == 1
    assert dashboard.hourly[-1].percent == 100
    assert dashboard.hourly[-2].percent == 25
    assert dashboard.created_last_day == 5


def test_sessions_older_than_a_day_are_not_in_the_hourly_chart(host, make_session, clock):
    make_session(host)
    clock.advance(hours=24)
    make_session(host)
    assert build_dashboard().created_last_day == 1


def test_the_dashboard_costs_four_queries_whatever_the_tables_hold(django_assert_num_queries, host, make_session):
    make_session(host)
    # Sessions by effective status, players in live sessions, joins in the last hour, and
    # sessions created per hour.
    with django_assert_num_queries(4):
        build_dashboard()
    bulk_sessions(300)
    with django_assert_num_queries(4):
        build_dashboard()


def test_the_admin_index_opens_with_the_dashboard(operator_client, host, make_session):
    make_session(host)
    html = operator_client.get("/admin/").content.decode()
    assert 'id="session-dashboard"' in html
    assert f'href="{SESSIONS}?status=open"' in html
    assert html.index("session-dashboard") < html.index('id="content-main"') + 2000
    assert "<title>Dashboard | Session service</title>" in html
    assert "Session service admin" in html


def test_staff_who_may_not_see_sessions_get_no_dashboard(client, staff):
    client.force_login(staff)
    html = client.get("/admin/").content.decode()
    assert 'id="session-dashboard"' not in html


def test_a_player_without_staff_rights_is_refused_admin(client, member):
    client.force_login(member)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    response = client.get(SESSIONS)
    assert response.status_code == 302


def test_the_landing_page_links_admin_and_the_api_docs(client):
    html = client.get("/").content.decode()
    assert 'href="/admin/"' in html
    assert "/api/v1/docs/" in html
    assert "/api/v1/schema/" in html


# --- every other change list keeps a constant number of queries for 100 and 1,000 rows --------


def _many_players(count: int) -> list[Player]:
    batch = uuid.uuid4().hex[:6]
    return Player.objects.bulk_create(
        [Player(username=f"p{batch}-{i:05d}", uid=uuid.uuid4(), password="!") for i in range(count)]
    )


def _many_sessions(count: int) -> list[GameSession]:
    hosts = _many_players(count)
    sessions = GameSession.objects.bulk_create(
        [
            GameSession(host=h, creator=h, name=f"s{i}", users_doc=[str(h.uid)], workspace_id=f"ws{i % 7}")
            for i, h in enumerate(hosts)
        ]
    )
    Membership.objects.bulk_create([Membership(session=s, player=h) for s, h in zip(sessions, hosts, strict=True)])
    return sessions


def _many_memberships(count):
    _many_sessions(count)


def _many_teams(count):
    Team.objects.bulk_create([Team(session=s, index=0, name="Team 1") for s in _many_sessions(count)])


def _many_invites(count):
    sessions, players = _many_sessions(count), _many_players(count)
    Invite.objects.bulk_create(
        [Invite(session=s, player=p, inviting_player=s.host) for s, p in zip(sessions, players, strict=True)]
    )


def _many_reservations(count):
    sessions, players = _many_sessions(count), _many_players(count)
    expires = timezone.now() + timedelta(minutes=5)
    Reservation.objects.bulk_create(
        [
            Reservation(session=s, player=p, created_by=s.host, expires_at=expires)
            for s, p in zip(sessions, players, strict=True)
        ]
    )


def _many_failures(count):
    JoinPasswordFailure.objects.bulk_create(
        [JoinPasswordFailure(session=s, player=s.host) for s in _many_sessions(count)]
    )


def _many_stamps(count):
    now = timezone.now()
    PlayerSessionsStamp.objects.bulk_create(
        [PlayerSessionsStamp(player_uid=uuid.uuid4(), changed_at=now) for _ in range(count)]
    )


def _many_songs(count):
    Song.objects.bulk_create(
        [Song(title=f"Song {i}", artist=f"Artist {i % 9}", genre=f"genre{i % 4}") for i in range(count)]
    )


def _many_charts(count):
    songs = Song.objects.bulk_create([Song(title=f"Song {i}", artist="A") for i in range(count)])
    Chart.objects.bulk_create([Chart(song=s, difficulty=("EASY", "HARD")[i % 2]) for i, s in enumerate(songs)])


def _many_scores(count):
    sessions = _many_sessions(count)
    song = Song.objects.create(title="Paranoia", artist="180")
    charts = [Chart.objects.create(song=song, difficulty=d) for d in ("EASY", "HARD", "EXPERT")]
    Score.objects.bulk_create(
        [
            Score(session=s, player=s.host, chart=charts[i % 3], value=i, grade=("A", "S")[i % 2])
            for i, s in enumerate(sessions)
        ]
    )


@pytest.mark.parametrize(
    ("model", "make"),
    [
        (Membership, _many_memberships),
        (Team, _many_teams),
        (Invite, _many_invites),
        (Reservation, _many_reservations),
        (JoinPasswordFailure, _many_failures),
        (PlayerSessionsStamp, _many_stamps),
        (Song, _many_songs),
        (Chart, _many_charts),
        (Score, _many_scores),
    ],
    ids=lambda value: getattr(value, "__name__", "make"),
)
def test_every_other_change_list_costs_the_same_queries_for_100_and_1000_rows(admin_client, monkeypatch, model, make):
    """The session and player lists have their own tests above; these are the other lists.
    Every row is on the page (list_per_page raised to the row count)."""
    model_admin = admin.site._registry[model]
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"

    def count_queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries), "\n".join(q["sql"] for q in ctx.captured_queries)

    make(100)
    monkeypatch.setattr(model_admin, "list_per_page", 100)
    hundred, _ = count_queries()
    make(900)
    monkeypatch.setattr(model_admin, "list_per_page", 1000)
    thousand, queries = count_queries()

    assert model.objects.count() >= 1000
    assert thousand == hundred, queries


# --- every change made in admin is in the admin log -------------------------------------------


def log_of(obj) -> list[tuple[int, str]]:
    """(user, change message) of the admin log entries about `obj`, oldest first."""
    entries = LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name)
    return [(e.user_id, e.get_change_message()) for e in entries.order_by("action_time", "pk")]


def test_every_change_made_in_admin_is_in_the_admin_log(
    operator_client, operator, host, member, outsider, make_session
):
    session = make_session(host, idle_timeout=0)
    session_join(session_id=session.pk, actor=member)
    invite = invite_create(session_id=session.pk, actor=host, player_uid=outsider.uid)
    reserved = PlayerFactory(username="reserved")
    reservation = reservation_create(session_id=session.pk, actor=host, player_uid=reserved.uid)
    graceful = make_session(host, idle_timeout=0)

    def act(path, action, pks, **extra):
        response = operator_client.post(path, {"action": action, "_selected_action": pks, **extra}, follow=True)
        assert response.status_code == 200
        return response

    act("/admin/sessions_app/invite/", "revoke", [invite.pk])
    act("/admin/sessions_app/reservation/", "cancel", [reservation.pk])
    membership = Membership.objects.get(session=session, player=member)
    act("/admin/sessions_app/membership/", "remove_from_session", [membership.pk])
    act(SESSIONS, "close_after", [graceful.pk], apply="Close", seconds="60")
    operator_client.post(f"{SESSIONS}{session.pk}/close/", {"seconds": "0"})

    assert not Reservation.objects.exists()
    assert row(session).status == "closed"
    assert row(graceful).status == "closing"
    assert log_of(session) == [
        (operator.pk, "Revoked the invite of outsider (admin action)."),
        (operator.pk, "Cancelled the reservation of reserved (admin action)."),
        (operator.pk, "Removed player member (admin action)."),
        (operator.pk, "Closed now (admin action)."),
    ]
    assert log_of(graceful) == [(operator.pk, "Closing, closes in 60 s (admin action).")]
    assert {e.action_flag for e in LogEntry.objects.all()} == {CHANGE}


def test_deleting_a_player_in_admin_logs_what_it_did_to_its_sessions(
    operator_client, operator, host, member, make_session
):
    """The player's sessions change too (host handed over, version bumped): their History says so."""
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)

    response = operator_client.post(f"/admin/players_app/player/{host.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert row(session).host_id == member.pk
    assert log_of(session) == [
        (operator.pk, f"Removed player host ({host.uid}): the player was deleted (admin action).")
    ]


# --- finding a session: search by host, filters, dates ----------------------------------------


def listed(client, **query) -> set[GameSession]:
    response = client.get(SESSIONS, query)
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


def test_sessions_are_found_by_their_hosts_username(operator_client, host, member, make_session):
    hosted = make_session(host, name="Alpha")
    make_session(member, name="Beta")

    assert listed(operator_client, q="HOS") == {hosted}  # part of it, any case


def test_sessions_filter_by_visibility_type_workspace_host_and_dates(
    operator_client, host, game_server, make_session, clock
):
    old = make_session(host, visibility="private", type="ranked", workspace_id="eu-1")
    session_close(session_id=old.pk, actor=host, close_after=0)
    clock.advance(days=3)
    new = make_session(host, workspace_id="eu-10")
    system = make_session(game_server, host_uid=None, users=[])
    today = timezone.localtime(clock.now).date()

    assert listed(operator_client, visibility="private") == {old}
    assert listed(operator_client, type="ranked") == {old}
    assert listed(operator_client, workspace="eu-1") == {old}  # exact, not a prefix
    assert listed(operator_client, host__isempty="1") == {system}
    # As the admin's own date filter links it: midnight with its offset (no naive datetime).
    assert listed(operator_client, date_created__gte=f"{today} 00:00:00+00:00") == {new, system}
    assert listed(operator_client, closed_at__isnull="False") == {old}


# --- date hierarchies and read-only identifiers -----------------------------------------------


def test_every_model_with_a_date_has_a_date_hierarchy():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("sessions_app", "players_app"):
            continue
        dates = [f.name for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]
        if dates:
            assert model_admin.date_hierarchy in dates, model.__name__


def test_uids_dates_and_versions_are_never_editable_in_admin(admin_user, host, member, make_session):
    """Read-only identifiers and records: no change form offers them as a field."""
    session = make_session(host)
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    readonly = {"uid", "version", "date_created", "date_modified", "closed_at", "date_joined", "changed_at"}
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("sessions_app", "players_app"):
            continue
        obj = model.objects.first()
        if not model_admin.has_change_permission(request, obj):
            continue  # a view-only list: nothing is editable at all
        form = model_admin.get_form(request, obj)
        offered = readonly & set(form.base_fields)
        assert offered == set(), (model.__name__, offered)
    page = admin.site._registry[GameSession].get_readonly_fields(request, session)
    assert {"uid", "version", "date_created", "date_modified", "closed_at"} <= set(page)


# --- the session form keeps the lifecycle -----------------------------------------------------


@pytest.mark.parametrize("start", ["open", "in_progress"])
def test_the_session_form_cannot_set_closing(operator_client, host, make_session, start):
    """The lifecycle holds in admin as in the API: only a close with a grace period sets closing."""
    session = make_session(host, status=start)
    before = row(session)
    page = operator_client.get(change_url(session))

    response = operator_client.post(change_url(session), form_data(page, status="closing"))

    assert response.status_code == 200
    assert "only by DELETE with closeAfter" in response.context["adminform"].form.errors["status"][0]
    after = row(session)
    assert (after.status, after.version, after.closes_at) == (before.status, before.version, before.closes_at)


# --- the CSV export: status as of now, never a password ---------------------------------------


def test_the_csv_export_shows_the_status_as_of_now_and_never_a_password(operator_client, host, make_session, clock):
    due = make_session(host, name="Due", password="s3cret-pass")
    closing = session_close(session_id=due.pk, actor=host, close_after=30)
    clock.advance(seconds=31)  # past closesAt: closed, though not swept

    response = operator_client.post(SESSIONS, {"action": "export_csv", "_selected_action": [due.pk]})

    body = b"".join(response.streaming_content).decode()
    [line] = list(csv.DictReader(io.StringIO(body)))
    assert (line["status"], line["closedAt"], line["hasPassword"]) == (
        "closed",
        iso(closing.closes_at),
        "yes",
    )
    assert "s3cret-pass" not in body
    assert row(due).password_hash not in body
    assert response["Content-Disposition"].startswith('attachment; filename="sessions-')


# --- the dashboard is server-rendered and needs no internet -----------------------------------


def test_the_admin_index_and_landing_page_load_nothing_from_the_internet(operator_client, host, make_session):
    make_session(host)
    for path in ("/admin/", "/"):
        html = operator_client.get(path).content.decode()
        external = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html)
        assert external == [], path
    assert 'id="sd-hourly"' in operator_client.get("/admin/").content.decode()


# --- join codes -------------------------------------------------------------------------------


def test_the_session_page_shows_the_join_code(operator_client, host, make_session):
    session = make_session(host)

    response = operator_client.get(change_url(session))

    assert response.status_code == 200
    assert session.join_code in response.content.decode()


def test_rotate_join_code_rotates_through_the_service_and_logs_it(operator_client, operator, host, make_session):
    sessions = [make_session(host), make_session(host)]
    closed = make_session(host)
    session_close(session_id=closed.pk, actor=host, close_after=0)

    response = act(operator_client, "rotate_join_code", [*sessions, closed])

    assert "New join codes for 2 sessions." in messages_of(response)
    assert any("not changed: The session is closed." in message for message in messages_of(response))
    for session in sessions:
        after = row(session)
        assert (after.join_code != session.join_code, after.version) == (True, 1)
        entry = LogEntry.objects.get(object_id=str(session.pk))
        assert (entry.action_flag, entry.user_id) == (CHANGE, operator.pk)
    assert row(closed).join_code == closed.join_code
