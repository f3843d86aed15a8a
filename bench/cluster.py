"""`make cluster-test`: the service as several nodes on one machine, under a mixed load.

What runs (every process started here is stopped on exit, whatever happens):
- pgbouncer (Debian's package) in transaction mode, on a port of its own, with its own
  configuration in a temporary directory, in front of a fresh PostgreSQL database;
- two gunicorn app processes (2 sync workers each) on two ports and one uvicorn live process,
  two `run_sweeper` and two `deliver_webhooks` processes, all through pgbouncer
  (DATABASE_POOLER=pgbouncer) and sharing Redis (REDIS_URL);
- a webhook receiver on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1) counting deliveries by id.

The load (a few thousand requests, threads spread over both app ports): players join and
leave sessions of capacity 4 while reading them; some sessions get a grace period
(closeAfter) so that the sweepers have work; an observer listens to every session over
WebSocket on the live process. Then the checks below; the report names each, and the exit
status is 1 when any failed.

Environment: CLUSTER_PG (postgres://postgres@127.0.0.1:5432, trust auth), CLUSTER_DATABASE
(cluster_test; dropped and created), CLUSTER_REDIS_URL (redis://127.0.0.1:6379/0),
CLUSTER_OPERATIONS (2400 load requests), CLUSTER_KEEP=1 keeps the database and the logs.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import websockets

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PG = os.environ.get("CLUSTER_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = os.environ.get("CLUSTER_DATABASE", "cluster_test")
REDIS_URL = os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0")
OPERATIONS = int(os.environ.get("CLUSTER_OPERATIONS", "2400"))
KEEP = os.environ.get("CLUSTER_KEEP") == "1"
RUN = secrets.token_hex(3)  # names of this run: players, channel prefix, client address
HOSTS, JOINERS, SESSIONS_PER_HOST, DUE_SESSIONS = 6, 24, 2, 8
CAPACITY = 4  # numTeams 2 x teamSize 2
THREADS = 8
PASSWORD = "cluster-pass-42"
# Every request comes "from" this address through a trusted proxy (127.0.0.1), so that this
# run's login-throttle counts are its own in a Redis other runs may share.
CLIENT_ADDRESS = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def log(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """The processes, started in order and stopped in reverse."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.bouncer_port, self.app_ports, self.live_port = free_port(), [free_port(), free_port()], free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PROMETHEUS_"))},
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.bouncer_port}/{DATABASE}",
            "DATABASE_POOLER": "pgbouncer",
            "REDIS_URL": REDIS_URL,
            "LIVE_CHANNEL_PREFIX": f"cluster-{RUN}",
            "LIVE_MAX_CONNECTIONS_PER_PLAYER": "100",
            "TRUSTED_PROXIES": "127.0.0.1",
            "REGISTRATION_RATE": "0",
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
            "WEB_CONCURRENCY": "2",
            "LOG_FORMAT": "json",
        }

    def start(self, name: str, args: list[str], **env: str) -> subprocess.Popen:
        output = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **env}, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def died(self) -> list[str]:
        return [name for name, process in self.processes if process.poll() is not None]

    def logs(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start_bouncer(self) -> None:
        executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        host, port = PG.split("@")[-1].split(":")
        (self.workdir / "users.txt").write_text('"postgres" ""\n')
        (self.workdir / "pgbouncer.ini").write_text(
            f"""[databases]
{DATABASE} = host={host} port={port} dbname={DATABASE} user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.bouncer_port}
unix_socket_dir =
auth_type = trust
auth_file = {self.workdir / "users.txt"}
pool_mode = transaction
max_client_conn = 200
default_pool_size = 12
ignore_startup_parameters = extra_float_digits
admin_users = postgres
"""
        )
        # pgbouncer refuses to run as root: it drops to the postgres account then.
        args = [executable, str(self.workdir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "postgres"]
        self.start("pgbouncer", args)
        wait_for(lambda: tcp_open(self.bouncer_port), "pgbouncer", 15)

    def bouncer_figures(self) -> tuple[bool, str]:
        """Transactions pgbouncer passed on, and the server connections it held for them."""
        url = f"postgres://postgres@127.0.0.1:{self.bouncer_port}/pgbouncer"
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as admin:
            cursor = admin.cursor()
            cursor.execute("SHOW STATS")
            columns = [c.name for c in cursor.description]
            stats = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            cursor.execute("SHOW CLIENTS")
            clients = len(cursor.fetchall())
            cursor.execute("SHOW SERVERS")
            servers = len(cursor.fetchall())
        ours = next((row for row in stats if row["database"] == DATABASE), None)
        if ours is None:
            return False, "no statistics for the database"
        with psycopg.connect(f"{PG}/{DATABASE}") as db:
            # Every connection PostgreSQL has to the database, besides this one, is pgbouncer's.
            backends = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DATABASE]
            ).fetchone()[0]
        return ours["total_xact_count"] > 0 and backends == servers, (
            f"{ours['total_xact_count']} transactions, {ours['total_query_count']} statements; now {clients} "
            f"client connections on {servers} server connections; PostgreSQL sees {backends} connections"
        )

    def start_services(self) -> None:
        for index, port in enumerate(self.app_ports):
            self.start(
                f"app{index + 1}",
                [str(BIN / "gunicorn"), "-c", "sessions_project/gunicorn_conf.py", "--bind", f"127.0.0.1:{port}"],
            )
        self.start(
            "live",
            [str(BIN / "uvicorn"), "sessions_project.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(self.live_port), "--lifespan", "off"],
        )
        for index in (1, 2):
            self.start(f"sweeper{index}", [str(BIN / "python"), "manage.py", "run_sweeper", "--interval", "1"])
            self.start(f"webhooks{index}", [str(BIN / "python"), "manage.py", "deliver_webhooks", "--interval", "1"])
        for port in self.app_ports:
            wait_for(lambda port=port: http_status(port, "/readyz") == 200, f"/readyz on {port}", 60)
        wait_for(lambda: tcp_open(self.live_port), "the live process", 60)


def tcp_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def http_status(port: int, path: str) -> int:
    try:
        return request(port, "GET", path)[0]
    except OSError:
        return 0


def wait_for(condition, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}")


_connections = threading.local()


def request(port: int, method: str, path: str, token: str | None = None, body=None) -> tuple[int, dict | list | None]:
    """One request on this thread's keep-alive connection to `port`."""
    pool = _connections.__dict__.setdefault("pool", {})
    headers = {"X-Forwarded-For": CLIENT_ADDRESS}
    if token:
        headers["Authorization"] = f"jwt {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    for attempt in (1, 2):
        connection = pool.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        pool[port] = connection
        try:
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            raw = response.read()
            break
        except (http.client.HTTPException, ConnectionError):
            # A worker recycled (max_requests) closes its keep-alive connection: reconnect once.
            connection.close()
            pool.pop(port, None)
            if attempt == 2:
                raise
    document = json.loads(raw) if raw and response.getheader("Content-Type", "").endswith("json") else None
    return response.status, document


class Tally:
    """Every answer of the load, by route and status (and problem code)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.server_errors: list[str] = []

    def add(self, what: str, status: int, document) -> None:
        code = document.get("code") if isinstance(document, dict) else None
        with self.lock:
            self.counts[f"{what} {status}{' ' + code if code else ''}"] += 1
            if status >= 500:
                self.server_errors.append(f"{what} {status} {document}")


class Receiver(BaseHTTPRequestHandler):
    """The webhook endpoint: counts deliveries by event id, and those whose signature (README
    "Checking the signature") does not match the endpoint's secret."""

    seen: collections.Counter[int] = collections.Counter()
    badly_signed = 0
    secret = ""
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event_id = json.loads(body)["id"]
        header = self.headers.get("X-Session-Signature", "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        expected = hmac.new(self.secret.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        with self.lock:
            self.seen[event_id] += 1
            if not hmac.compare_digest(expected, parts.get("v1", "")):
                Receiver.badly_signed += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


async def listen(
    live_port: int, token: str, uids: list[str], received: dict[str, list[int]], lags: list[float], stop: asyncio.Event
):
    async def one(uid: str) -> None:
        url = f"ws://127.0.0.1:{live_port}/api/v1/sessions/{uid}/live?after=0"
        async with websockets.connect(url, additional_headers={"Authorization": f"jwt {token}"}) as ws:
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                event = json.loads(message)
                received[uid].append(event["id"])
                lags.append(time.time() - datetime.fromisoformat(event["at"]).timestamp())

    await asyncio.gather(*(one(uid) for uid in uids))


def session_events(port: int, token: str, uid: str) -> list[dict]:
    events: list[dict] = []
    while True:
        after = events[-1]["id"] if events else 0
        status, page = request(port, "GET", f"/api/v1/sessions/{uid}/events?after={after}&limit=1000", token)
        assert status == 200, (status, page)
        if not page:
            return events
        events.extend(page)


def run_load(cluster: Cluster, checks: dict[str, tuple[bool, str]]) -> None:
    ports = cluster.app_ports
    tally = Tally()
    api = "/api/v1"

    # Players: registered and signed in through both app processes.
    names = [f"c{RUN}-host{i}" for i in range(HOSTS)] + [f"c{RUN}-p{i}" for i in range(JOINERS)] + [f"c{RUN}-obs"]

    def sign_up(index_name: tuple[int, str]) -> tuple[str, str]:
        index, name = index_name
        port = ports[index % 2]
        status, player = request(port, "POST", f"{api}/players", body={"username": name, "password": PASSWORD})
        tally.add("register", status, player)
        status, tokens = request(port, "POST", f"{api}/auth/token", body={"username": name, "password": PASSWORD})
        tally.add("token", status, tokens)
        return player["uid"], tokens["access"]

    with ThreadPoolExecutor(4) as pool:
        players = list(pool.map(sign_up, enumerate(names)))
    hosts, joiners, observer = players[:HOSTS], players[HOSTS : HOSTS + JOINERS], players[-1]
    log(f"{len(players)} players registered and signed in")

    # Sessions: each host opens some for the load, and one that closes after a grace period.
    def create(host: tuple[str, str], port: int) -> str:
        body = {"numTeams": 2, "teamSize": 2, "data": {"run": RUN}}
        status, session = request(port, "POST", f"{api}/sessions", host[1], body)
        tally.add("create", status, session)
        return session["uid"]

    playing = [create(host, ports[i % 2]) for i, host in enumerate(hosts) for _ in range(SESSIONS_PER_HOST)]
    due = [create(hosts[i % HOSTS], ports[i % 2]) for i in range(DUE_SESSIONS)]
    host_of = {uid: hosts[i // SESSIONS_PER_HOST] for i, uid in enumerate(playing)}
    host_of.update({uid: hosts[i % HOSTS] for i, uid in enumerate(due)})
    everything = playing + due

    # The observer listens to every session on the live process, from the start of its log.
    received: dict[str, list[int]] = {uid: [] for uid in everything}
    lags: list[float] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    listener_errors: list[BaseException] = []

    def run_listener() -> None:
        try:
            loop.run_until_complete(listen(cluster.live_port, observer[1], everything, received, lags, stop))
        except BaseException as exc:  # reported as a failed check
            listener_errors.append(exc)

    listener = threading.Thread(target=run_listener, daemon=True)
    listener.start()
    wait_for(lambda: all(received[uid] for uid in everything) or listener_errors, "the listener's first events", 30)
    lags.clear()  # from here on, events are pushed as they are committed

    # The load: joins and leaves (hosts stay, so no session empties), reads, grace periods.
    closing: set[str] = set()

    def worker(seed: int) -> None:
        # Each thread plays its own joiners, so it knows where they are: a leave is from a
        # session the player is in, a join to one it is not in (and 409 session_full when full).
        rng = random.Random(seed)
        mine = {player: set() for player in joiners[seed::THREADS]}
        for n in range(OPERATIONS // THREADS):
            port = ports[(seed + n) % 2]
            if n == (OPERATIONS // THREADS) * (1 + seed % 3) // 5 and seed < len(due):
                # Grace periods of 2 to 4 s, at different moments of the load.
                uid = due[seed]
                closing.add(uid)
                path = f"{api}/sessions/{uid}?closeAfter={2 + seed % 3}"
                status, doc = request(port, "DELETE", path, host_of[uid][1])
                tally.add("closeAfter", status, doc)
                continue
            player = rng.choice(list(mine))
            roll = rng.random()
            # Sessions in their grace period are left alone (a request finding one due would
            # record its close before the sweepers do); their members simply stay.
            staying = sorted(mine[player] - closing)
            if roll < 0.7 and staying and (roll < 0.3 or len(staying) >= 3):
                uid = rng.choice(staying)
                status, doc = request(port, "POST", f"{api}/sessions/{uid}/leave", player[1], {})
                tally.add("leave", status, doc)
                if status == 200:
                    mine[player].discard(uid)
                continue
            # Due sessions take joins until their grace period starts, never after it, so
            # that only the sweepers find them due.
            uid = rng.choice(playing + [uid for uid in due if uid not in closing])
            if roll < 0.7:
                status, doc = request(port, "POST", f"{api}/sessions/{uid}/join", player[1], {})
                tally.add("join", status, doc)
                if status == 200:
                    mine[player].add(uid)
            elif roll < 0.9:
                status, doc = request(port, "GET", f"{api}/sessions/{uid}", player[1])
                tally.add("get", status, doc)
                if status == 200 and len(doc["users"]) > CAPACITY:
                    tally.add("over capacity", 0, {"code": uid})
            else:
                status, doc = request(port, "GET", f"{api}/sessions?limit=20", player[1])
                tally.add("list", status, doc)

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    load_seconds = time.monotonic() - started
    load_requests = sum(tally.counts.values())
    log(f"load: {load_requests} requests in {load_seconds:.1f} s over ports {ports}")

    # The grace periods run out; the sweepers record the closes (nothing else touches them).
    def all_due_closed() -> bool:
        with psycopg.connect(f"{PG}/{DATABASE}") as db:
            closed = db.execute(
                "SELECT count(*) FROM sessions_app_sessionevent WHERE type = 'session.closed' "
                "AND session_uid::text = ANY(%s)",
                [due],
            ).fetchone()[0]
        return closed >= len(due)

    wait_for(all_due_closed, "the sweepers to close the due sessions", 30)

    # Every event of the log reaches the listener exactly once, in order (a lost wake-up is
    # caught up on the keep-alive tick, so wait a little longer than one).
    logs = {uid: [e["id"] for e in session_events(ports[0], observer[1], uid)] for uid in everything}
    try:
        wait_for(lambda: all(received[uid] == logs[uid] for uid in everything), "the listener to catch up", 20)
    except RuntimeError:
        pass
    loop.call_soon_threadsafe(stop.set)
    listener.join(5)
    missing = sum(len(set(logs[uid]) - set(received[uid])) for uid in everything)
    doubled = sum(len(received[uid]) - len(set(received[uid])) for uid in everything)
    foreign = sum(len(set(received[uid]) - set(logs[uid])) for uid in everything)
    in_order = all(received[uid] == logs[uid] for uid in everything)
    total = sum(len(v) for v in logs.values())
    lags.sort()
    lag = f"{lags[len(lags) // 2] * 1000:.0f} ms median, {lags[-1] * 1000:.0f} ms worst" if lags else "none"
    checks["every event received exactly once over WebSocket, in order"] = (
        not listener_errors and missing == doubled == foreign == 0 and in_order,
        f"{total} events in {len(everything)} session logs; missing {missing}, twice {doubled}, "
        f"not in the log {foreign}, in log order: {in_order}; from commit to the listener: {lag} "
        f"(not checked){'; listener: ' + repr(listener_errors[0]) if listener_errors else ''}",
    )

    # Capacity: replay each session's membership from its log, and read the final state.
    worst = 0
    for uid in everything:
        events = session_events(ports[1], observer[1], uid)
        members = len(events[0]["data"]["users"])
        for event in events:
            members += {"member.joined": 1, "member.left": -1, "member.kicked": -1}.get(event["type"], 0)
            worst = max(worst, members)
    over = sum(n for what, n in tally.counts.items() if what.startswith("over capacity"))
    full = sum(n for what, n in tally.counts.items() if "session_full" in what or "team_full" in what)
    checks["capacity never exceeded"] = (
        worst <= CAPACITY and over == 0,
        f"most members ever in one session: {worst} (capacity {CAPACITY}); {full} joins refused as full",
    )

    # Each due session closed once, by one of the two sweepers.
    with psycopg.connect(f"{PG}/{DATABASE}") as db:
        closes = dict(
            db.execute(
                "SELECT session_uid::text, count(*) FROM sessions_app_sessionevent "
                "WHERE type = 'session.closed' AND session_uid::text = ANY(%s) GROUP BY 1",
                [due],
            ).fetchall()
        )
    by_sweeper = {name: sweeper_closes(cluster.logs(name)) for name in ("sweeper1", "sweeper2")}
    swept = [uid for closed in by_sweeper.values() for uid in closed]
    checks["two sweepers: each due session closed once"] = (
        all(closes.get(uid) == 1 for uid in due) and len(swept) == len(set(swept)) and set(due) <= set(swept),
        f"{len(due)} due sessions, session.closed events per session {sorted(set(closes.values()))}; "
        + ", ".join(f"{name} closed {len(closed)}" for name, closed in by_sweeper.items()),
    )

    # Shared throttles: wrong join passwords and failed sign-ins, sent in parallel to both ports.
    check_throttles(cluster, tally, hosts[0], joiners[:12], checks)

    checks["no 5xx answer"] = (
        not tally.server_errors,
        f"{sum(tally.counts.values())} requests; "
        + ("; ".join(tally.server_errors[:3]) if tally.server_errors else "none 5xx"),
    )
    log("answers: " + ", ".join(f"{what}: {n}" for what, n in sorted(tally.counts.items())))


def sweeper_closes(text: str) -> list[str]:
    closed: list[str] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "sweeper pass":
            closed.extend(entry.get("sessions", []))
    return closed


def check_throttles(cluster: Cluster, tally: Tally, host, guessers, checks) -> None:
    ports, api = cluster.app_ports, "/api/v1"
    body = {"numTeams": 2, "teamSize": 2, "password": "right-password"}
    status, session = request(ports[0], "POST", f"{api}/sessions", host[1], body)
    tally.add("create", status, session)
    uid = session["uid"]

    def guess(args: tuple[int, tuple[str, str]]) -> int:
        n, player = args
        status, doc = request(ports[n % 2], "POST", f"{api}/sessions/{uid}/join", player[1], {"password": "wrong"})
        tally.add("wrong join password", status, doc)
        return status

    # One player, 12 wrong passwords at once over both processes: 5 counted, then 429.
    with ThreadPoolExecutor(6) as pool:
        statuses = collections.Counter(pool.map(guess, [(n, guessers[0]) for n in range(12)]))
    per_player_ok = statuses == {403: 5, 429: 7}
    # Other players, 4 each: the session's own limit (20 failures by everyone) is reached.
    with ThreadPoolExecutor(6) as pool:
        more = collections.Counter(pool.map(guess, [(n, p) for p in guessers[1:5] for n in range(4)]))
    last = guess((1, guessers[5]))
    session_ok = more == {403: 15, 429: 1} and last == 429
    checks["join-password throttle shared by both app processes"] = (
        per_player_ok and session_ok,
        f"one player, 12 parallel wrong passwords: {dict(statuses)} (expected 5x403, 7x429); "
        f"4 more players x 4: {dict(more)} (expected 15x403, 1x429 at the session's 20), then {last}",
    )

    # Sign-ins: 15 wrong passwords for one username at once over both processes: 10 (the
    # rate) answered 401, the rest 429; the right password is refused too once the limit is hit.
    name = f"c{RUN}-p0"

    def sign_in(n: int, password: str = "wrong-password") -> int:
        status, doc = request(ports[n % 2], "POST", f"{api}/auth/token", body={"username": name, "password": password})
        tally.add("wrong sign-in", status, doc)
        return status

    with ThreadPoolExecutor(6) as pool:
        logins = collections.Counter(pool.map(sign_in, range(15)))
    right = sign_in(0, PASSWORD)
    checks["login throttle shared by both app processes"] = (
        logins == {401: 10, 429: 5} and right == 429,
        f"15 parallel wrong sign-ins: {dict(logins)} (expected 10x401, 5x429); then the right password: {right}",
    )


def check_webhooks(cluster: Cluster, endpoint_after: int, checks) -> None:
    with psycopg.connect(f"{PG}/{DATABASE}") as db:
        wanted = {
            row[0] for row in db.execute("SELECT id FROM sessions_app_sessionevent WHERE id > %s", [endpoint_after])
        }

    try:
        wait_for(lambda: set(Receiver.seen) >= wanted, "the webhook workers", 90)
    except RuntimeError:
        pass
    time.sleep(2)  # anything sent twice would arrive now
    with psycopg.connect(f"{PG}/{DATABASE}") as db:
        attempts = db.execute("SELECT count(*) FROM sessions_app_webhookattempt").fetchone()[0]
    seen = dict(Receiver.seen)
    twice = sum(1 for n in seen.values() if n > 1)
    checks["two webhook workers: each event delivered once"] = (
        set(seen) == wanted and twice == 0 and Receiver.badly_signed == 0,
        f"{len(wanted)} events; received {len(seen)} distinct, {twice} more than once, "
        f"{len(wanted - set(seen))} missing, {Receiver.badly_signed} badly signed; {attempts} attempts recorded",
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cluster-test-"))
    workdir.chmod(0o755)  # pgbouncer reads its configuration as the postgres account
    cluster = Cluster(workdir)
    checks: dict[str, tuple[bool, str]] = {}
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)

    def interrupted(signum, frame):
        raise SystemExit(f"cluster: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    started = time.monotonic()
    receiving: threading.Thread | None = None
    try:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{DATABASE}"')
        cluster.start_bouncer()
        log(f"pgbouncer (transaction mode) on {cluster.bouncer_port} in front of {PG}/{DATABASE}")
        cluster.manage("migrate", "--noinput")
        # The web processes' timeouts, on the database (DATABASE_POOLER=pgbouncer sends no
        # startup options), after migrate, which must not have them.
        with psycopg.connect(f"{PG}/{DATABASE}", autocommit=True) as db:
            for setting in ("statement_timeout = 4000", "lock_timeout = 3000", "timezone = 'UTC'"):
                db.execute(f'ALTER DATABASE "{DATABASE}" SET {setting}')
        receiving = threading.Thread(target=receiver.serve_forever, daemon=True)
        receiving.start()
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
        registered = cluster.manage(
            "shell",
            "-c",
            "from sessions_app.services.webhooks import endpoint_register; "
            "from sessions_app.webhook_models import WebhookEndpoint; "
            f"endpoint = endpoint_register(endpoint=WebhookEndpoint(url={url!r})); "
            "print(endpoint.after_event_id, endpoint.secret)",
        )
        after, Receiver.secret = registered.strip().splitlines()[-1].split()
        endpoint_after = int(after)
        cluster.start_services()
        log(f"app processes on {cluster.app_ports}, live on {cluster.live_port}, 2 sweepers, 2 webhook workers")
        run_load(cluster, checks)
        check_webhooks(cluster, endpoint_after, checks)
        checks["everything went through pgbouncer"] = cluster.bouncer_figures()
        died = cluster.died()
        checks["every process still running"] = (not died, ", ".join(died) or "all")
    except BaseException as exc:  # an error or a signal: reported, and the processes are stopped
        checks["the run itself"] = (False, f"{type(exc).__name__}: {exc}")
    finally:
        if receiving is not None:
            receiver.shutdown()
        receiver.server_close()
        cluster.stop()
    failed = [name for name, (ok, _) in checks.items() if not ok]
    log(f"report ({time.monotonic() - started:.0f} s):")
    for name, (ok, detail) in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if failed:
        for name, _ in cluster.processes:
            tail = cluster.logs(name).splitlines()[-15:]
            print(f"--- {name} (last lines of {workdir / (name + '.log')})\n" + "\n".join(tail))
    if not KEEP:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
