"""GET /metrics: who may read it, and the figures after known actions (joins, refusals,
leaves, events, requests by route, queries, the sweeper, the live figures)."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from sessions_app.api import metrics_views
from sessions_app.services.lifecycle import close_due_sessions, session_close
from sessions_app.services.membership import session_join
from sessions_project import metrics

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-1f2e3d4c"
# Every metric README "Operating it" names.
DOCUMENTED = (
    "http_requests_total",
    "http_request_duration_seconds",
    "db_queries_total",
    "db_query_errors_total",
    "sessions_by_status",
    "sessions_players_in_live_sessions",
    "sessions_live_figures_computed_timestamp_seconds",
    "sessions_joins_total",
    "sessions_leaves_total",
    "sessions_joins_refused_total",
    "sessions_events_written_total",
    "sessions_live_connections",
    "sessions_webhook_deliveries_total",
    "sessions_sweeper_runs_total",
    "sessions_sweeper_closed_total",
    "sessions_sweeper_last_run_timestamp_seconds",
)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def fresh_figures(monkeypatch):
    """The live figures as if never computed: the next scrape computes them."""
    monkeypatch.setattr(metrics_views, "_figures_set_at", 0.0)
    cache.delete(metrics_views.LIVE_FIGURES_CACHE_KEY)


def scrape(client=None, **extra) -> tuple[int, str]:
    response = (client or APIClient()).get("/metrics", **extra)
    return response.status_code, response.content.decode()


# --- who may read it ------------------------------------------------------------------------


def test_metrics_are_served_to_loopback_in_prometheus_text_format(fresh_figures):
    response = APIClient().get("/metrics")  # the test client's address is 127.0.0.1

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for name in DOCUMENTED:
        assert f"# HELP {name} " in text, name


def test_metrics_are_refused_to_other_networks_in_the_problem_format(settings):
    response = APIClient().get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "permission_denied"


def test_allowed_networks_are_a_setting(settings, fresh_figures):
    settings.METRICS_ALLOWED_NETWORK_LIST = [ipaddress.ip_network("10.0.0.0/8")]

    assert scrape(REMOTE_ADDR="10.1.2.3")[0] == 200
    assert scrape(REMOTE_ADDR="127.0.0.1")[0] == 403


def test_with_a_token_other_addresses_need_it(settings, fresh_figures):
    settings.METRICS_TOKEN = TOKEN

    missing = APIClient().get("/metrics", REMOTE_ADDR="203.0.113.9")
    wrong = APIClient().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")

    assert (missing.status_code, missing.json()["code"]) == (401, "not_authenticated")
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert wrong.status_code == 401
    assert scrape(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[0] == 200


# --- the figures after known actions --------------------------------------------------------


def join_url(session) -> str:
    return f"/api/v1/sessions/{session.uid}/join"


def test_a_join_counts_a_join_and_its_event_once_committed(
    api, host, member, make_session, django_capture_on_commit_callbacks
):
    session = make_session(host)
    joins, events = value("sessions_joins_total"), value("sessions_events_written_total", type="member.joined")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(member).post(join_url(session))

    assert response.status_code == 200
    assert value("sessions_joins_total") == joins + 1
    assert value("sessions_events_written_total", type="member.joined") == events + 1


def test_a_join_not_committed_counts_nothing(api, host, member, make_session, django_capture_on_commit_callbacks):
    session = make_session(host)
    joins = value("sessions_joins_total")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.as_(member).post(join_url(session))

    assert callbacks  # the count waits for the commit, which the test's transaction never makes
    assert value("sessions_joins_total") == joins


def test_a_refused_full_join_counts_its_reason(api, host, member, outsider, make_session):
    session = make_session(host, num_teams=1, team_size=2)
    api.as_(member).post(join_url(session))
    full, joins = value("sessions_joins_refused_total", reason="session_full"), value("sessions_joins_total")

    response = api.as_(outsider).post(join_url(session))

    assert response.json()["code"] == "session_full"
    assert value("sessions_joins_refused_total", reason="session_full") == full + 1
    assert value("sessions_joins_total") == joins


def test_a_wrong_password_counts_as_refused_for_its_reason(api, host, make_session):
    session = make_session(host, password="sesame")
    before = value("sessions_joins_refused_total", reason="wrong_password")

    response = api.as_(PlayerFactory()).post(join_url(session), HTTP_X_SESSION_PASSWORD="nope")

    assert response.json()["code"] == "wrong_password"
    assert value("sessions_joins_refused_total", reason="wrong_password") == before + 1


def test_a_leave_counts_a_leave(api, session, member, django_capture_on_commit_callbacks):
    before = value("sessions_leaves_total")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/leave")

    assert response.status_code == 200
    assert value("sessions_leaves_total") == before + 1


def test_requests_are_counted_by_route_name_never_by_path(api, session, host):
    labels = {"method": "GET", "route": "session-detail", "status": "200"}
    before = value("http_requests_total", **labels)
    timed = value("http_request_duration_seconds_count", **labels)

    api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    assert value("http_requests_total", **labels) == before + 1
    assert value("http_request_duration_seconds_count", **labels) == timed + 1
    _, text = scrape()
    assert str(session.uid) not in text


def test_unknown_methods_and_paths_do_not_grow_the_series():
    client = APIClient()
    before = value("http_requests_total", method="other", route="<unmatched>", status="404")

    client.generic("BREW", "/coffee/pot-1")
    client.generic("BREW", "/coffee/pot-2")

    assert value("http_requests_total", method="other", route="<unmatched>", status="404") == before + 2


def test_queries_are_counted(api, session, host, django_assert_num_queries):
    before = value("db_queries_total", alias="default")

    with django_assert_num_queries(1) as captured:
        api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    assert value("db_queries_total", alias="default") == before + len(captured)


def test_the_sweeper_counts_its_runs_and_what_it_closed(host, make_session, clock):
    make_session(host, idle_timeout=60)
    make_session(host, idle_timeout=60)
    runs, closed = value("sessions_sweeper_runs_total"), value("sessions_sweeper_closed_total")
    clock.advance(seconds=61)

    close_due_sessions()
    close_due_sessions()

    assert value("sessions_sweeper_runs_total") == runs + 2
    assert value("sessions_sweeper_closed_total") == closed + 2
    assert value("sessions_sweeper_last_run_timestamp_seconds") > 0


def test_live_figures_are_computed_once_per_interval(host, member, make_session, fresh_figures):
    session = make_session(host)
    make_session(host)
    closed = make_session(host)
    session_join(session_id=session.pk, actor=member)
    session_close(session_id=closed.pk, actor=host, close_after=0)

    scrape()

    assert value("sessions_by_status", status="open") == 2
    assert value("sessions_by_status", status="closed") == 1
    assert value("sessions_players_in_live_sessions") == 2  # host and member

    make_session(host)
    scrape()  # within METRICS_LIVE_FIGURES_SECONDS: the figures stand as they were
    assert value("sessions_by_status", status="open") == 2


def test_a_scrape_within_the_interval_costs_no_query(fresh_figures, django_assert_num_queries):
    scrape()

    with django_assert_num_queries(0):
        assert scrape()[0] == 200


def test_live_connections_gauge_counts_while_open():
    before = value("sessions_live_connections")

    with metrics.live_connection():
        assert value("sessions_live_connections") == before + 1

    assert value("sessions_live_connections") == before
