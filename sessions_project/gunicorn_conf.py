"""gunicorn's configuration for production (`make serve`) and the benchmark:

    gunicorn -c sessions_project/gunicorn_conf.py

Chosen by measurement with `make bench` on a 2-core machine (bench/RESULTS.md): see the
README's "Serving" section. Every value can be overridden on the command line, and
WEB_CONCURRENCY (workers), GUNICORN_WORKER_CLASS and GUNICORN_THREADS from the environment.
"""

from __future__ import annotations

import gc
import os
from typing import Any

wsgi_app = "sessions_project.wsgi"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A persistent database connection per worker (CONN_MAX_AGE) outlives the requests; a
# worker is replaced after this many requests (with jitter, so not all at once) so that
# nothing a long-lived process might accumulate grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10


def post_worker_init(worker: Any) -> None:
    """The application is loaded: what it allocated (modules, URL patterns, serializers,
    compiled templates) lives as long as the worker. gc.freeze() moves it out of the cyclic
    collector's sight, so that the collections a request's garbage triggers do not walk it
    again and again."""
    gc.collect()
    gc.freeze()
