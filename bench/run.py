"""`make bench`: load, serve, drive every endpoint against its baseline, write bench/RESULTS.md.

    BENCH_SESSIONS=10000 BENCH_DURATION=5 .venv/bin/python -m bench.run

The project is served as in production (DEBUG=0, a generated SECRET_KEY, gunicorn, persistent
connections) and, next to it with the same gunicorn configuration, the bare views of
bench/baseline_urls.py. wrk drives each endpoint in interleaved rounds; medians are reported.
Exits 1 if any run answered a status it should not have (the harness is broken, or the API),
never because of a time.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from bench import config

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64)
SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": SECRET_KEY,
    "DATABASE_URL": config.DATABASE_URL,
    "DATABASE_STATEMENT_TIMEOUT": str(config.STATEMENT_TIMEOUT),
    # Throttles and quotas would refuse a benchmark's bursts (0: no limit).
    "LOGIN_FAILURE_RATE": "0",
    "REGISTRATION_RATE": "0",
    "QUOTA_LIVE_SESSIONS_PER_HOST": "0",
    "QUOTA_PENDING_INVITES_PER_SESSION": "0",
    "LOG_LEVEL": "WARNING",
    **({"REDIS_URL": config.REDIS_URL} if config.REDIS_URL else {}),
}
os.environ.update(SERVER_ENV)
os.environ["DJANGO_SETTINGS_MODULE"] = "sessions_project.settings"
# The driver's own process (loading, EXPLAIN ANALYZE) is not a web request: no statement timeout.
os.environ["SESSIONS_MANAGEMENT_COMMAND"] = "bench"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from bench import load  # noqa: E402
from players_app.api.serializers import PlayerTokenObtainPairSerializer  # noqa: E402
from players_app.models import Player  # noqa: E402
from sessions_app.filters import SORTABLE  # noqa: E402
from sessions_app.models import GameSession  # noqa: E402
from sessions_app.reads import player_sessions_view  # noqa: E402
from sessions_app.services.documents import render_documents  # noqa: E402

API = "/api/v1"
VAR = config.VAR
SORT_MODIFIED = quote(json.dumps({"dateModified": "DESC"}, separators=(",", ":")))


def log(message: str) -> None:
    print(message, flush=True)


# --- targets and tokens ----------------------------------------------------------------------


def tokens_for(players) -> dict[int, str]:
    out = {}
    for player in players:
        access = PlayerTokenObtainPairSerializer.get_token(player).access_token
        access.set_exp(lifetime=timedelta(hours=12))
        out[player.pk] = f"jwt {access}"
    return out


@dataclass
class Targets:
    read_uids: list[str]
    readers: list[Player]
    patch: list[tuple[int, str, int]]  # session id, uid, host id
    join: list[tuple[str, int]]  # session uid, joiner id
    joiners: list[Player]
    tokens: dict[int, str] = field(default_factory=dict)
    etags: dict[int, str] = field(default_factory=dict)


def gather_targets() -> Targets:
    n = config.TARGETS
    step = max(1, config.SESSIONS // 1000)
    read_uids = [
        str(u)
        for u in GameSession.objects.filter(visibility="public", id__in=range(step, config.SESSIONS + 1, step))
        .order_by("id")
        .values_list("uid", flat=True)[:1000]
    ]
    readers = list(Player.objects.filter(id__lte=n).order_by("id"))
    patch_rows = GameSession.objects.raw(
        "SELECT DISTINCT ON (host_id) id, uid, host_id FROM sessions_app_gamesession"
        " WHERE status = 'open' AND host_id IS NOT NULL ORDER BY host_id, id LIMIT %s",
        [n],
    )
    patch = [(s.id, str(s.uid), s.host_id) for s in patch_rows]
    joiners = list(Player.objects.filter(username__startswith="bench-joiner-").order_by("id")[:n])
    join_uids = list(
        GameSession.objects.filter(status="open", visibility="public", password_hash="", host__isnull=False)
        .exclude(id__in=[p[0] for p in patch])
        .order_by("id")
        .values_list("uid", flat=True)[: len(joiners)]
    )
    join = [(str(u), j.pk) for u, j in zip(join_uids, joiners, strict=False)]
    hosts = list(Player.objects.filter(id__in={p[2] for p in patch}))
    targets = Targets(read_uids, readers, patch, join, joiners)
    targets.tokens = tokens_for({*readers, *hosts, *joiners})
    for player in readers:
        targets.etags[player.pk] = player_sessions_view(player_id=player.pk, player_uid=player.uid).etag
    return targets


# --- run specifications --------------------------------------------------------------------


@dataclass
class Spec:
    name: str
    server: str  # "app" or "base"
    expect: tuple[int, ...]
    threads: list[list[dict]]
    patch: bool = False


def spread(entries: list, groups: int | None = None) -> list[list]:
    groups = groups or config.CONNECTIONS
    if len(entries) < groups:  # one target (e.g. a list page): every connection asks for it
        entries = [entries[i % len(entries)] for i in range(groups)]
    return [entries[i::groups] for i in range(groups) if entries[i::groups]]


def get(path: str, token: str | None = None, **headers) -> dict:
    if token:
        headers["Authorization"] = token
    return {"method": "GET", "path": path, "headers": headers}


def post(path: str, token: str | None = None, body: str = "{}") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    return {"method": "POST", "path": path, "headers": headers, "body": body}


def specs(t: Targets) -> dict[str, Spec]:
    tok = t.tokens
    reader_tokens = [tok[p.pk] for p in t.readers]

    def by_reader(path: str) -> list[list[dict]]:
        return spread([get(path, token) for token in reader_tokens])

    create_body = json.dumps({"numTeams": 2, "teamSize": 4, "data": {"map": "dust", "mode": "tdm"}})
    join_groups = []
    for uid, joiner in t.join:
        join_groups.append(
            [post(f"{API}/sessions/{uid}/join", tok[joiner]), post(f"{API}/sessions/{uid}/leave", tok[joiner])]
        )
    join_threads = [sum(group, []) for group in spread(join_groups)]
    s = [
        Spec(
            "GET /sessions/{uid}",
            "app",
            (200,),
            spread(
                [get(f"{API}/sessions/{u}", reader_tokens[i % len(reader_tokens)]) for i, u in enumerate(t.read_uids)]
            ),
        ),
        Spec("list, limit 100", "app", (200,), by_reader(f"{API}/sessions?limit=100")),
        Spec("list, limit 20", "app", (200,), by_reader(f"{API}/sessions?limit=20")),
        Spec(
            "list sorted by dateModified, limit 20",
            "app",
            (200,),
            by_reader(f"{API}/sessions?limit=20&sort={SORT_MODIFIED}"),
        ),
        Spec(f"list, skip {config.SKIP}", "app", (200,), by_reader(f"{API}/sessions?limit=20&skip={config.SKIP}")),
        Spec("/sessions/count", "app", (200,), by_reader(f"{API}/sessions/count")),
        Spec("/sessions/count?status=open", "app", (200,), by_reader(f"{API}/sessions/count?status=open")),
        Spec(
            "create (POST /sessions)",
            "app",
            (201,),
            spread([post(f"{API}/sessions", tok[j.pk], create_body) for j in t.joiners]),
        ),
        Spec("PATCH with version", "app", (200,), [], patch=True),  # entries made before each run
        Spec("join + leave, spread", "app", (200,), join_threads),
        Spec(
            "player's view, 200",
            "app",
            (200,),
            spread([get(f"{API}/players/{p.uid}/sessions", tok[p.pk]) for p in t.readers]),
        ),
        Spec(
            "player's view, 304",
            "app",
            (304,),
            spread(
                [
                    get(f"{API}/players/{p.uid}/sessions", tok[p.pk], **{"If-None-Match": t.etags[p.pk]})
                    for p in t.readers
                ]
            ),
        ),
        Spec("B_get", "base", (200,), spread([get(f"/b/get/{u}") for u in t.read_uids])),
        Spec("B_list 100", "base", (200,), spread([get("/b/list?limit=100")])),
        Spec("B_list 20", "base", (200,), spread([get("/b/list?limit=20")])),
        Spec("B_skip", "base", (200,), spread([get(f"/b/list?limit=20&skip={config.SKIP}")])),
        Spec("B_count", "base", (200,), spread([get("/b/count")])),
        Spec("B_write", "base", (200,), spread([post(f"/b/write/{uid}") for _, uid, _ in t.patch])),
        Spec("B_insert", "base", (201,), spread([post(f"/b/insert?player={j.pk}") for j in t.joiners])),
    ]
    return {spec.name: spec for spec in s}


def sorted_pages(t: Targets) -> dict[str, dict]:
    """Page 1 (limit 20) in the default order and sorted by every sortable member, as a reader."""
    token = t.tokens[t.readers[0].pk]
    pages = {"page 1, default order": get(f"{API}/sessions?limit=20", token)}
    for member in SORTABLE:
        sort = quote(json.dumps({member: "DESC"}, separators=(",", ":")))
        pages[f"page 1 sorted by {member} DESC"] = get(f"{API}/sessions?limit=20&sort={sort}", token)
    return pages


def search_pages(t: Targets) -> dict[str, dict]:
    """Filtered pages of 20 (issue 13), as a reader: a selective search by data (one session in
    a thousand), joinable=true, a data range with free places, and the same sorted by freePlaces."""
    token = t.tokens[t.readers[0].pk]
    by_free = quote(json.dumps({"freePlaces": "ASC"}, separators=(",", ":")))
    return {
        "search: data.tournament=winter-cup": get(f"{API}/sessions?limit=20&data.tournament=winter-cup", token),
        "search: joinable=true": get(f"{API}/sessions?limit=20&joinable=true", token),
        "search: data.round=range(3,5)&freePlaces=gte(2)": get(
            f"{API}/sessions?limit=20&data.round=range(3,5)&freePlaces=gte(2)", token
        ),
        "search: joinable=true sorted by freePlaces": get(
            f"{API}/sessions?limit=20&joinable=true&sort={by_free}", token
        ),
    }


def explain_searches(t: Targets) -> dict[str, str]:
    """EXPLAIN ANALYZE of each search page's query, and of a cursor page deep in the list (the
    cursor of page 1 000 of 20, reached by following the next links in-process)."""
    client = Client()
    plans = {}
    entries = dict(search_pages(t))
    url = f"{API}/sessions?limit=20"
    token = t.tokens[t.readers[0].pk]
    pages = min(1000, config.SESSIONS // 40)
    for _ in range(pages):
        response = client.get(url, headers={"Authorization": token})
        url = response.headers["Link"].split(">", 1)[0].removeprefix("<")
    entries[f"cursor page {pages + 1} of 20 (default order)"] = get(url, token)
    for name, entry in entries.items():
        response, queries = one_request(client, entry)
        if response.status_code != 200:
            raise SystemExit(f"bench: {name} answered {response.status_code}: {response.content[:300]!r}")
        sql = next(q["sql"] for q in queries if "sessions_app_gamesession" in q["sql"])
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        plans[name] = f"{sql}\n\n{plan}"
    return plans


BASELINE_OF = {
    "GET /sessions/{uid}": "B_get",
    "list, limit 100": "B_list 100",
    "list, limit 20": "B_list 20",
    "list sorted by dateModified, limit 20": "B_list 20",
    f"list, skip {config.SKIP}": "B_skip",
    "/sessions/count": "B_count",
    "/sessions/count?status=open": "B_count",
    "create (POST /sessions)": "B_insert",
    "PATCH with version": "B_write",
    "join + leave, spread": "B_write",
    "player's view, 200": "B_get",
    "player's view, 304": "B_get",
}


def patch_threads(t: Targets) -> list[list[dict]]:
    """PATCH entries with each session's current version (earlier rounds moved it)."""
    versions = dict(GameSession.objects.filter(id__in=[p[0] for p in t.patch]).values_list("id", "version"))
    entries = [
        {
            "method": "PATCH",
            "path": f"{API}/sessions/{uid}",
            "headers": {"Content-Type": "application/json", "Authorization": t.tokens[host]},
            "uid": uid,
            "version": versions[sid],
        }
        for sid, uid, host in t.patch
    ]
    return spread(entries)


def lua_string(value: str) -> str:
    assert "]==]" not in value
    return f"[==[{value}]==]"


def lua_entry(entry: dict) -> str:
    parts = [f"method={lua_string(entry['method'])}", f"path={lua_string(entry['path'])}"]
    headers = ", ".join(f"[ {lua_string(k)} ]={lua_string(v)}" for k, v in entry.get("headers", {}).items())
    parts.append(f"headers={{{headers}}}")
    if entry.get("body") is not None:
        parts.append(f"body={lua_string(entry['body'])}")
    if "uid" in entry:
        parts.append(f"uid={lua_string(entry['uid'])}, version={int(entry['version'])}")
    return "{" + ", ".join(parts) + "}"


def write_lua(spec: Spec, threads: list[list[dict]]) -> Path:
    path = VAR / (spec.name.translate(str.maketrans(" /{}?=,'+", "_________")) + ".lua")
    body = ",\n".join("{" + ", ".join(lua_entry(e) for e in thread) + "}" for thread in threads)
    path.write_text(
        f"return {{expect={{{', '.join(map(str, spec.expect))}}}, patch={'true' if spec.patch else 'false'},\n"
        f"threads={{\n{body}\n}}}}\n"
    )
    return path


# --- servers -------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, port: int, settings_module: str):
        self.name, self.port = name, port
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
        env.pop("SESSIONS_MANAGEMENT_COMMAND", None)
        args = [
            str(config.ROOT / ".venv" / "bin" / "gunicorn"),
            # Production's configuration (make serve), with the bench's worker settings on top.
            "--config",
            "sessions_project/gunicorn_conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(config.WORKERS),
            "--worker-class",
            config.WORKER_CLASS,
            "--threads",
            str(config.THREADS),
            "--log-level",
            "warning",
            "--backlog",
            "2048",
        ]
        try:  # a server left over from an interrupted run would answer in this one's place
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            pass
        else:
            raise SystemExit(f"bench: port {port} is already in use (a server left from an earlier run?)")
        self.log = open(VAR / f"gunicorn-{name}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(args, cwd=config.ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, path: str) -> None:
        for _ in range(100):
            if self.process.poll() is not None:
                raise SystemExit(f"bench: the {self.name} server exited; see {self.log.name}")
            try:
                status, _ = fetch(self.port, "GET", path)
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bench: the {self.name} server did not answer on port {self.port}")

    def worker_rss_mb(self) -> list[float]:
        out = subprocess.run(
            ["ps", "-o", "rss=", "--ppid", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(x) / 1024 for x in out.split()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def fetch(port: int, method: str, path: str, headers: dict | None = None, body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_wrk(spec: Spec, port: int, threads: list[list[dict]]) -> dict:
    data = write_lua(spec, threads)
    n = len(threads)
    cmd = [
        "wrk",
        f"-t{n}",
        f"-c{n}",
        f"-d{config.DURATION}s",
        "--timeout",
        "60s",
        "-s",
        str(config.ROOT / "bench" / "wrk.lua"),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BENCH_DATA": str(data)}, check=False)
    result = None
    seen = ""
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[6:])
        elif line.startswith("BENCHSEEN "):
            seen = line[10:].strip()
    if out.returncode != 0 or result is None:
        raise SystemExit(f"bench: wrk failed on {spec.name}:\n{out.stdout}\n{out.stderr}")
    result["seen"] = seen
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def alone_ms(port: int, entry: dict, times: int = 5) -> float:
    """Median time of one request with nothing else running (sequential, after one warm-up)."""
    samples = []
    for k in range(times + 1):
        started = time.perf_counter()
        status, _ = fetch(port, entry["method"], entry["path"], entry.get("headers"), entry.get("body"))
        if k:
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# --- in-process measures: queries per request, EXPLAIN ANALYZE, document checks -------------


def one_request(client: Client, entry: dict):
    method = entry["method"].lower()
    headers = {k: v for k, v in entry.get("headers", {}).items() if k != "Content-Type"}
    kwargs = {"headers": headers}
    if entry.get("body") is not None:
        kwargs.update(data=entry["body"], content_type="application/json")
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(entry["path"], **kwargs)
    return response, queries.captured_queries


TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def measure_queries(all_specs: dict[str, Spec], t: Targets) -> tuple[dict[str, str], dict[str, str]]:
    client = Client()
    counts, plans = {}, {}
    explain = {
        "list, limit 100",
        "list sorted by dateModified, limit 20",
        f"list, skip {config.SKIP}",
        "/sessions/count",
        "/sessions/count?status=open",
        "B_list 100",
        "B_skip",
        "B_count",
    }
    for name, spec in all_specs.items():
        threads = patch_threads(t) if spec.patch else spec.threads
        entries = threads[0][:2] if name == "join + leave, spread" else threads[0][:1]
        total = control = 0
        for entry in entries:
            if spec.patch:
                entry = {**entry, "body": json.dumps({"data": {"map": "dust"}, "version": entry["version"]})}
            if spec.server == "base":
                with override_settings(ROOT_URLCONF="bench.baseline_urls"):
                    response, queries = one_request(client, entry)
            else:
                response, queries = one_request(client, entry)
            if response.status_code not in spec.expect:
                raise SystemExit(f"bench: {name} answered {response.status_code}: {response.content[:300]!r}")
            total += len(queries)
            control += sum(q["sql"].split(" ", 1)[0] in TRANSACTION_CONTROL for q in queries)
            if name in explain:
                sql = next(q["sql"] for q in queries if "sessions_app_gamesession" in q["sql"])
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                plans[name] = f"{sql}\n\n{plan}"
        counts[name] = f"{total - control} (+{control})" if control else str(total)
    return counts, plans


def check_api_documents(t: Targets) -> int:
    """GET /sessions/{uid} (as bench-server, which sees private sessions) equals what the
    services render from the tables, for a sample of every shape."""
    server = Player.objects.get(username="bench-server")
    token = tokens_for([server])[server.pk]
    client = Client()
    checked = 0
    for session in GameSession.objects.filter(id__lte=60).order_by("id"):
        response = client.get(f"{API}/sessions/{session.uid}", headers={"Authorization": token})
        assert response.status_code == 200, response.content
        body = response.json()
        render_documents(session)
        now_iso = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        invited = [i["uid"] for i in session.invites_doc if i["expiresAt"] is None or i["expiresAt"] > now_iso]
        got = (body["users"], body["teams"], body["invited"], body["version"])
        want = (session.users_doc, session.teams_doc, invited, session.version)
        if got != want:
            raise SystemExit(f"bench: GET /sessions/{session.uid} answers {got}, the services render {want}")
        checked += 1
    return checked


# --- the report ----------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        mem_gb = int(mem.split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        mem_gb = 0
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GB RAM, {python}"


# (endpoint, its baseline, the least ratio of req/s the issue asks for)
RATIO_TARGETS = [
    ("GET /sessions/{uid}", 0.85),
    ("list, limit 100", 0.8),
    ("list, limit 20", 0.8),
    (f"list, skip {config.SKIP}", 1 / 1.5),
    ("/sessions/count", 1 / 1.5),
    ("/sessions/count?status=open", 1 / 1.5),
    ("create (POST /sessions)", 0.5),
    ("PATCH with version", 0.5),
    ("join + leave, spread", 0.5),
    ("player's view, 304", 0.8),
    ("player's view, 200", 0.5),
]
MEMORY_LIMIT_MB = 150


def target_lines(med, alone, rss) -> list[str]:
    """The issue's targets, each with what this run measured and whether it is met."""
    lines = ["| target | measured | met |", "|---|---|---|"]

    def row(target: str, measured: str, met: bool) -> None:
        lines.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")

    for name, least in RATIO_TARGETS:
        ratio = med(name, "rps") / med(BASELINE_OF[name], "rps")
        row(f"{name} >= {least:.2f}x {BASELINE_OF[name]}", f"{ratio:.2f}x", ratio >= least)
    default = alone.get("page 1, default order")
    if default:
        worst_name, worst = max(
            ((n, ms) for n, ms in alone.items() if n.startswith("page 1 sorted by")), key=lambda item: item[1]
        )
        row(
            "page 1 sorted by any member <= 2x the default order (alone)",
            f"worst {worst:.1f} ms ({worst_name.removeprefix('page 1 sorted by ')}) vs {default:.1f} ms",
            worst <= 2 * default,
        )
    for name, base in ((f"list, skip {config.SKIP}", "B_skip"), ("/sessions/count", "B_count")):
        if name in alone and base in alone:
            row(
                f"{name} <= 1.5x {base} (alone)",
                f"{alone[name]:.1f} ms vs {alone[base]:.1f} ms",
                alone[name] <= 1.5 * alone[base],
            )
    for name in ("search: data.tournament=winter-cup", "search: joinable=true"):
        if name in alone:
            row(f"{name}, a page of 20 < 50 ms (alone)", f"{alone[name]:.1f} ms", alone[name] < 50)
    worst_tail = max(BASELINE_OF, key=lambda n: med(n, "p99_us") / med(n, "p50_us"))
    tail = med(worst_tail, "p99_us") / med(worst_tail, "p50_us")
    row("p99 <= 3x p50 for every endpoint", f"worst {tail:.1f}x ({worst_tail})", tail <= 3)
    biggest = max(rss["project"], default=0)
    row(f"worker memory after the runs < {MEMORY_LIMIT_MB} MB", f"{biggest:.0f} MB", biggest < MEMORY_LIMIT_MB)
    return lines


def merge_section(path: Path, key: str, body: str) -> str:
    """RESULTS.md keeps one section per table size: replace this size's, keep the others."""
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    section = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + section + rest.split(end, 1)[1].lstrip("\n")
    return (text.rstrip() + "\n\n" if text.strip() else "") + section


def write_results(results, counts, plans, alone, rss, failures, load_seconds, started) -> None:
    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=config.ROOT)
    lines = [
        f"## {config.SESSIONS:,} sessions",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC at commit {commit.stdout.strip() or '?'} by `make bench` "
        f"(BENCH_SESSIONS={config.SESSIONS}, BENCH_DURATION={config.DURATION}, BENCH_ROUNDS={config.ROUNDS}).",
        f"Machine: {machine()}; load average at the start {os.getloadavg()[0]:.2f}. "
        + os.environ.get("BENCH_NOTE", ""),
        f"Servers: gunicorn, {config.WORKERS} {config.WORKER_CLASS} workers"
        + (f" x {config.THREADS} threads" if config.THREADS > 1 else "")
        + f", DEBUG=0, persistent connections (CONN_MAX_AGE), PostgreSQL database `{config.DATABASE}`"
        + (f" (loaded in {load_seconds:.0f} s)" if load_seconds else " (reused)")
        + (
            ", REDIS_URL set (channel layer, cache and throttle counters in Redis)"
            if config.REDIS_URL
            else ", no REDIS_URL (in-process channel layer: a worker publishes no wake-up)"
        )
        + ". The baselines are bench/baseline_urls.py on the same gunicorn configuration.",
        f"wrk: {config.CONNECTIONS} connections (one per thread), {config.DURATION} s a run, "
        f"{config.ROUNDS} interleaved rounds; req/s, p50 and p99 are medians over the rounds.",
        "Queries: SQL statements of one request per endpoint in-process (join + leave: both requests);"
        " (+N): transaction control statements (BEGIN, COMMIT, SAVEPOINT, ...) besides.",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | baseline | baseline req/s | ratio | queries | wrong statuses |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, base in BASELINE_OF.items():
        bad = sum(r["bad"] + r["timeout"] for r in results[name])
        lines.append(
            f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'p50_us') / 1000:.1f} | {med(name, 'p99_us') / 1000:.1f} "
            f"| {base} | {med(base, 'rps'):.0f} | {med(name, 'rps') / med(base, 'rps'):.2f}x | {counts[name]} | {bad} |"
        )
    lines += ["", "| baseline | req/s | p50 ms | p99 ms | queries |", "|---|---:|---:|---:|---:|"]
    for base in dict.fromkeys(BASELINE_OF.values()):
        lines.append(
            f"| {base} | {med(base, 'rps'):.0f} | {med(base, 'p50_us') / 1000:.1f} "
            f"| {med(base, 'p99_us') / 1000:.1f} | {counts[base]} |"
        )
    lines += ["", "### Targets", ""] + target_lines(med, alone, rss)
    lines += ["", "### One request alone (median of 5, sequential)", "", "| request | ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in alone.items()]
    lines += ["", "### Worker memory after the runs (RSS)", ""]
    lines += [f"- {name}: " + ", ".join(f"{mb:.0f} MB" for mb in sizes) for name, sizes in rss.items()]
    if failures:
        lines += ["", "### FAILED runs (statuses not expected)", ""] + [f"- {f}" for f in failures]
    lines += ["", "### EXPLAIN ANALYZE", ""]
    for name, plan in plans.items():
        lines += [f"#### {name}", "", "```", plan, "```", ""]
    config.RESULTS.parent.mkdir(parents=True, exist_ok=True)
    config.RESULTS.write_text(merge_section(config.RESULTS, str(config.SESSIONS), "\n".join(lines)))


def main() -> int:
    started = datetime.now(UTC)
    VAR.mkdir(parents=True, exist_ok=True)
    load_seconds = 0.0
    if config.LOAD:
        t0 = time.monotonic()
        load.load(log)
        load_seconds = time.monotonic() - t0
    log(f"bench: documents of {load.check_documents()} sessions match what the services render")
    targets = gather_targets()
    all_specs = specs(targets)
    log(f"bench: API answers for {check_api_documents(targets)} sessions match the rendered documents")
    counts, plans = measure_queries(all_specs, targets)
    plans.update(explain_searches(targets))
    connection.close()

    app = Server("app", config.APP_PORT, "sessions_project.settings")
    base = Server("baseline", config.BASE_PORT, "bench.baseline_settings")
    results: dict[str, list[dict]] = {name: [] for name in all_specs}
    failures = []
    alone = {}
    try:
        app.wait(f"{API}/schema/")
        base.wait("/b/count")
        order = list(all_specs)
        for round_no in range(config.ROUNDS):
            # Interleaved: every run of a round before the next round, rotated each round.
            shift = round_no * 5 % len(order)
            for name in order[shift:] + order[:shift]:
                spec = all_specs[name]
                threads = patch_threads(targets) if spec.patch else spec.threads
                result = run_wrk(spec, app.port if spec.server == "app" else base.port, threads)
                results[name].append(result)
                flag = ""
                if result["bad"] or result["timeout"]:
                    failures.append(
                        f"{name} (round {round_no + 1}): {result['bad']} wrong, {result['timeout']} "
                        f"timed out; first seen: {result['seen'][:300]}"
                    )
                    flag = "  FAILED"
                log(
                    f"bench: round {round_no + 1} {name}: {result['rps']:.0f} req/s, p50 "
                    f"{result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, socket errors "
                    f"{result['connect']}/{result['read']}/{result['write']}{flag}"
                )
        connection.close()
        for name in (
            "list sorted by dateModified, limit 20",
            f"list, skip {config.SKIP}",
            "/sessions/count",
            "/sessions/count?status=open",
            "list, limit 20",
            "B_list 20",
            "B_skip",
            "B_count",
        ):
            spec = all_specs[name]
            alone[name] = alone_ms(app.port if spec.server == "app" else base.port, spec.threads[0][0])
        for name, entry in sorted_pages(targets).items():
            alone[name] = alone_ms(app.port, entry)
        for name, entry in search_pages(targets).items():
            alone[name] = alone_ms(app.port, entry)
        rss = {"project": app.worker_rss_mb(), "baseline": base.worker_rss_mb()}
    finally:
        app.stop()
        base.stop()
    write_results(results, counts, plans, alone, rss, failures, load_seconds, started)
    log(f"bench: wrote {config.RESULTS}")
    if failures:
        log("bench: FAILED: some answers had statuses not expected:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
