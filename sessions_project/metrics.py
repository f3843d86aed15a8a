"""Every Prometheus metric the service exports, defined here and only here (README "Operating
it" lists them), and the plumbing of `GET /metrics`.

Other parts import the objects and count: the request middleware
(`sessions_project.observability`), the database wrapper below, the services (events,
joins), the sweeper, live delivery (`LIVE_CONNECTIONS`) and webhook delivery
(`WEBHOOK_DELIVERIES`).

Several gunicorn workers: prometheus-client's multiprocess mode, on when
PROMETHEUS_MULTIPROC_DIR is set before this module is imported (sessions_project/gunicorn_conf.py
sets it): each process writes its values to files in that directory and a scrape adds them
up, so any worker answers with the figures of all of them. A process on the same host with the
same directory (the sweeper) adds its own. Gauges say how processes combine: `mostrecent` for
figures computed from the database (the latest computation wins), `livesum` for what each
live process holds (connections).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from sessions_project.errors import DomainError, problem_response
from sessions_project.throttling import client_address

P = ParamSpec("P")
R = TypeVar("R")

# --- HTTP: the request middleware --------------------------------------------------------------
# `route` is the URL pattern's name (`session-join`, `admin:index`), never the raw path, so
# that the number of series stays bounded whatever clients send; `<unmatched>` when no
# pattern matched (a 404 outside /api/, a static file).
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route (URL pattern name) and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request in this process (the middleware's view), by method, route and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# --- database ----------------------------------------------------------------------------------
DB_QUERIES = Counter("db_queries_total", "SQL statements executed, by connection alias.", ["alias"])
DB_QUERY_ERRORS = Counter(
    "db_query_errors_total",
    "SQL statements that raised, by connection alias and exception class (OperationalError, IntegrityError, ...).",
    ["alias", "error"],
)

# --- the service's own figures -----------------------------------------------------------------
SESSIONS_BY_STATUS = Gauge(
    "sessions_by_status",
    "Sessions by effective status (a session due to close counts as closed), as of the last computation.",
    ["status"],
    multiprocess_mode="mostrecent",
)
PLAYERS_IN_LIVE_SESSIONS = Gauge(
    "sessions_players_in_live_sessions",
    "Distinct players who are members of a live (open, in progress, closing) session.",
    multiprocess_mode="mostrecent",
)
LIVE_FIGURES_COMPUTED = Gauge(
    "sessions_live_figures_computed_timestamp_seconds",
    "When sessions_by_status and sessions_players_in_live_sessions were computed (Unix time).",
    multiprocess_mode="mostrecent",
)
JOINS = Counter("sessions_joins_total", "Players who joined a session (member.joined events committed).")
LEAVES = Counter("sessions_leaves_total", "Players who left a session (member.left events committed).")
JOINS_REFUSED = Counter(
    "sessions_joins_refused_total",
    "Joins refused, by reason: the problem code (session_full, wrong_password, not_joinable, ...).",
    ["reason"],
)
EVENTS_WRITTEN = Counter(
    "sessions_events_written_total", "Session events committed to the event log, by type.", ["type"]
)
# Live delivery (WebSocket and Server-Sent Events) increments on connect, decrements on close.
LIVE_CONNECTIONS = Gauge(
    "sessions_live_connections",
    "Open live-delivery connections (WebSocket and Server-Sent Events), all live processes together.",
    multiprocess_mode="livesum",
)
# Each webhook delivery attempt's outcome: succeeded, failed (retried later) or dead (given up).
WEBHOOK_DELIVERIES = Counter("sessions_webhook_deliveries_total", "Webhook delivery attempts, by outcome.", ["outcome"])
SWEEPER_RUNS = Counter("sessions_sweeper_runs_total", "Passes of the sweeper (close_due_sessions, run_sweeper).")
SWEEPER_CLOSED = Counter("sessions_sweeper_closed_total", "Sessions the sweeper recorded as closed.")
SWEEPER_LAST_RUN = Gauge(
    "sessions_sweeper_last_run_timestamp_seconds",
    "When a sweeper pass last finished (Unix time).",
    multiprocess_mode="mostrecent",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def exposition() -> bytes:
    """The text format of every metric: of all processes sharing the multiprocess directory
    when there is one, else of this process."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


def serve_metrics(port: int, address: str) -> None:
    """Serve `exposition()`'s figures over HTTP from a thread of this process (a process with
    no web server of its own: the sweeper on a host of its own). No access control of its
    own: bind it to an address only the scraper reaches."""
    registry: CollectorRegistry = DEFAULT_REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=address, registry=registry)


# --- counting helpers --------------------------------------------------------------------------


def counts_refusals(counter: Counter) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a workflow so that each refusal it raises (a DomainError) counts once in
    `counter`, labelled with its `code` (the problem code the client gets): the outcome is
    known where the workflow ends, with no query of its own. A bug (any other exception) is
    not a refusal."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except DomainError as exc:
                counter.labels(exc.code).inc()
                raise

        return counted

    return decorate


def count_events(types: Iterable[str]) -> None:
    """Committed session events, by type; joins and leaves are the member.joined and
    member.left among them."""
    for event_type in types:
        EVENTS_WRITTEN.labels(event_type).inc()
        if event_type == "member.joined":
            JOINS.inc()
        elif event_type == "member.left":
            LEAVES.inc()


def set_live_figures(by_status: Mapping[str, int], players_in_live_sessions: int, computed_at: float) -> None:
    for status, count in by_status.items():
        SESSIONS_BY_STATUS.labels(status).set(count)
    PLAYERS_IN_LIVE_SESSIONS.set(players_in_live_sessions)
    LIVE_FIGURES_COMPUTED.set(computed_at)


def count_sweep(closed: int) -> None:
    SWEEPER_RUNS.inc()
    SWEEPER_CLOSED.inc(closed)
    SWEEPER_LAST_RUN.set(time.time())


def count_queries(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Mapping[str, Any]) -> Any:
    """A connection's execute wrapper (installed on every new connection, see
    `install_query_counter`): one count per statement, one error count per failure."""
    alias = context["connection"].alias
    DB_QUERIES.labels(alias).inc()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        DB_QUERY_ERRORS.labels(alias, type(exc).__name__).inc()
        raise


def install_query_counter(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: count this connection's statements for its whole life."""
    if count_queries not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_queries)


@contextmanager
def live_connection() -> Iterator[None]:
    """Count one open live-delivery connection while the block runs."""
    LIVE_CONNECTIONS.inc()
    try:
        yield
    finally:
        LIVE_CONNECTIONS.dec()


# --- who may read /metrics ---------------------------------------------------------------------


def access_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may read /metrics: it sends the bearer METRICS_TOKEN (when one is
    set), or its address (the client's, past TRUSTED_PROXIES) is in METRICS_ALLOWED_NETWORKS.
    Else the problem to answer: 401 when a token could have let it in, 403 otherwise."""
    token = settings.METRICS_TOKEN
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return None
    if address_allowed(client_address(request), settings.METRICS_ALLOWED_NETWORK_LIST):
        return None
    if token:
        response = problem_response(401, "not_authenticated", "Metrics need `Authorization: Bearer <METRICS_TOKEN>`.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return problem_response(403, "permission_denied", "Metrics are not served to this address.")


def address_allowed(address: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in networks)
