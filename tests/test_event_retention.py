"""Events are kept EVENT_RETENTION_DAYS (default 30), whatever happened to their session:
purge_sessions deletes the older ones, and says how many; a dry run deletes nothing.
Admin shows them: a global read-only list, and a session's latest events on its page."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from sessions_app.admin.events import LATEST_EVENTS
from sessions_app.event_models import SessionEvent
from sessions_app.services import membership, sessions

from .conftest import change_url

pytestmark = pytest.mark.django_db

EVENTS = "/admin/sessions_app/sessionevent/"


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_sessions", "--closed-before", "2000-01-01", *args, stdout=out)
    return out.getvalue()


def age(session, days: float) -> None:
    SessionEvent.objects.filter(session_uid=session.uid).update(at=timezone.now() - timedelta(days=days))


def test_the_retention_is_30_days_by_default(settings):
    from sessions_project import settings as project_settings

    assert project_settings.EVENT_RETENTION_DAYS == 30


def test_purge_deletes_events_older_than_the_retention_and_keeps_the_rest(host, member, make_session, settings):
    settings.EVENT_RETENTION_DAYS = 30
    old, recent = make_session(host), make_session(host)
    membership.session_join(session_id=old.pk, actor=member)
    age(old, 31)
    age(recent, 29)

    out = purge()

    assert "Deleted 2 session event(s) older than 30 day(s)." in out
    assert not SessionEvent.objects.filter(session_uid=old.uid).exists()
    assert SessionEvent.objects.filter(session_uid=recent.uid).count() == 1


def test_a_dry_run_counts_old_events_and_deletes_none(host, make_session, settings):
    settings.EVENT_RETENTION_DAYS = 7
    session = make_session(host)
    age(session, 8)

    out = purge("--dry-run")

    assert "Would delete 1 session event(s) older than 7 day(s)." in out
    assert SessionEvent.objects.count() == 1


def test_a_deleted_sessions_events_stay_until_they_are_old_enough(host, make_session, settings):
    settings.EVENT_RETENTION_DAYS = 30
    session = make_session(host)
    sessions.session_delete(session_id=session.pk, actor=host)

    purge()
    assert SessionEvent.objects.filter(session_uid=session.uid).count() == 2
    age(session, 31)
    purge()
    assert not SessionEvent.objects.filter(session_uid=session.uid).exists()


def test_the_purge_command_says_it_removes_old_events():
    from sessions_app.management.commands.purge_sessions import Command

    assert "EVENT_RETENTION_DAYS" in Command.help


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_events_filtered_by_type_and_session(admin_client, host, member, make_session):
    session, other = make_session(host), make_session(host)
    membership.session_join(session_id=session.pk, actor=member)

    by_type = admin_client.get(f"{EVENTS}?type__exact=member.joined")
    by_session = admin_client.get(f"{EVENTS}?session_uid={other.uid}")
    by_search = admin_client.get(f"{EVENTS}?q={member.uid}")

    assert by_type.status_code == by_session.status_code == by_search.status_code == 200
    assert list(by_type.context["cl"].result_list.values_list("type", flat=True)) == ["member.joined"]
    assert list(by_session.context["cl"].result_list.values_list("session_uid", flat=True)) == [other.uid]
    assert list(by_search.context["cl"].result_list.values_list("type", flat=True)) == ["member.joined"]


def test_a_sessions_page_shows_its_latest_events_newest_first_and_links_to_all(
    admin_client, host, member, make_session
):
    session = make_session(host)
    for _ in range(LATEST_EVENTS // 2 + 1):
        membership.session_join(session_id=session.pk, actor=member)
        membership.session_leave(session_id=session.pk, actor=member)

    page = admin_client.get(change_url(session)).content.decode()

    assert f"{EVENTS}?session_uid={session.uid}" in page
    assert f"showing the latest {LATEST_EVENTS}" in page
    assert page.count("<td>member.left</td>") + page.count("<td>member.joined</td>") == LATEST_EVENTS
    assert "<td>session.created</td>" not in page  # the oldest is past the latest 50
    assert page.index("<td>member.left</td>") < page.index("<td>member.joined</td>")


def test_the_event_list_costs_the_same_queries_for_100_and_1000_events(admin_client, host, make_session, monkeypatch):
    from django.contrib import admin
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    session = make_session(host)
    model_admin = admin.site._registry[SessionEvent]

    def count(rows: int) -> int:
        SessionEvent.objects.bulk_create(
            SessionEvent(type="score.submitted", session_uid=session.uid, data={"n": i})
            for i in range(rows - SessionEvent.objects.count())
        )
        monkeypatch.setattr(model_admin, "list_per_page", rows)
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(EVENTS).status_code == 200
        return len(ctx.captured_queries)

    assert count(100) == count(1000)
