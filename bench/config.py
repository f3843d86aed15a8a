"""The benchmark's settings, from the environment (see /work/notes or the README's bench section).

Imported before Django is set up: the driver builds the servers' environment from it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SystemExit(f"bench: {name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"bench: {name} must be at least {minimum}, not {value}")
    return value


SESSIONS = _int("BENCH_SESSIONS", 10_000, 100)
DURATION = _int("BENCH_DURATION", 5, 1)  # seconds per wrk run
ROUNDS = _int("BENCH_ROUNDS", 3, 1)  # interleaved rounds; medians are reported
CONNECTIONS = _int("BENCH_CONNECTIONS", 16, 1)  # also wrk threads: one connection per Lua state
WORKERS = _int("BENCH_WORKERS", 2, 1)
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = _int("BENCH_THREADS", 1, 1)  # gunicorn --threads (gthread)
APP_PORT = _int("BENCH_APP_PORT", 8901, 1)
BASE_PORT = _int("BENCH_BASELINE_PORT", 8902, 1)
# Deep skip: the 100 000, or half the table on a smaller load.
SKIP = _int("BENCH_SKIP", min(100_000, SESSIONS // 2))
# 0: reuse the database as a previous run left it (same BENCH_SESSIONS), e.g. at one million.
LOAD = os.environ.get("BENCH_LOAD", "1") not in ("0", "false", "no")
DATABASE = os.environ.get("BENCH_DATABASE", f"bench_{SESSIONS}")
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DATABASE_URL = f"{PG_SERVER}/{DATABASE}"
# Redis for the served project (REDIS_URL: its channel layer, cache and throttle counters), as in
# production with more than one process; empty: the in-process defaults.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
RESULTS = Path(os.environ.get("BENCH_RESULTS", str(ROOT / "bench" / "RESULTS.md")))
# Statement timeout of the served project (ms): the production default of 4 s would turn
# the slowest requests at a million sessions into 503s instead of measuring them.
STATEMENT_TIMEOUT = _int("BENCH_STATEMENT_TIMEOUT", 120_000)
# Accounts the driver issues tokens for: one per target, so that writes never share a token.
TARGETS = _int("BENCH_TARGETS", 128, 16)
PLAYERS = max(200, SESSIONS // 5)
assert PLAYERS % 104_729 != 0  # the loader's member formula needs it (see load.py)
