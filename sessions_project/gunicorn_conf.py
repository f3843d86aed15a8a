"""gunicorn's configuration for production (`make serve`) and the benchmark:

    gunicorn -c sessions_project/gunicorn_conf.py

Chosen by measurement with `make bench` on a 2-core machine (bench/RESULTS.md): see the
README's "Serving" section. Every value can be overridden on the command line, and
WEB_CONCURRENCY (workers), GUNICORN_WORKER_CLASS and GUNICORN_THREADS from the environment.

Operating it (README): the access and error logs are JSON lines like the application's
(LOG_FORMAT=console for readable ones), and the workers share their Prometheus figures
through PROMETHEUS_MULTIPROC_DIR, a fresh temporary directory unless it is set.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# This file is read by the gunicorn master before the application is imported: the project's
# own modules are importable from the checkout it lives in.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessions_project.logs import gunicorn_logconfig  # noqa: E402

wsgi_app = "sessions_project.wsgi"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A persistent database connection per worker (CONN_MAX_AGE) outlives the requests; a
# worker is replaced after this many requests (with jitter, so not all at once) so that
# nothing a long-lived process might accumulate grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10

# Logs: an access line per request on stdout, errors on stderr, in LOG_FORMAT (json unless
# "console"), through the same structlog formatter as the application's lines.
accesslog = "-"
errorlog = "-"
logconfig_dict = gunicorn_logconfig(os.environ.get("LOG_FORMAT", "json").strip().lower())

# Metrics: every worker writes its figures to files in this directory and any worker's
# /metrics adds them up. Set before the workers import prometheus-client (they inherit the
# environment). An operator's own directory (shared with a sweeper on the same host, say) is
# used as given: empty it before starting the processes that share it, as prometheus-client
# asks, since figures left from an earlier run would be added in.
_created_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _created_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sessions-metrics-")


def on_exit(server: Any) -> None:
    if _created_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits takes its live gauges (connections) with it; its counters stay
    in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker: Any) -> None:
    """The application is loaded: what it allocated (modules, URL patterns, serializers,
    compiled templates) lives as long as the worker. gc.freeze() moves it out of the cyclic
    collector's sight, so that the collections a request's garbage triggers do not walk it
    again and again."""
    gc.collect()
    gc.freeze()
