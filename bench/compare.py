"""`make bench-compare`: this working tree's throughput against another commit's, on this machine,
in the same minutes.

`make bench` compares each endpoint with a bare Django view of the same run; a change is judged by
how that ratio moves. On a machine whose speed drifts between runs (a shared virtual machine), two
runs minutes apart can differ by more than the change being measured. This serves both versions at
once, each from its own tree and database, and alternates wrk runs between them round by round
(the order flipped every round), so that both see the same machine.

BENCH_BASE (required): the commit to compare with (a ref or hash). It is checked out as a git
worktree under var/bench/ and run with this tree's .venv, so it must run on this tree's
requirements. Its own bench package serves it (its loader, targets, Lua script), which must have
the functions used here (gather_targets, specs, Server, run_wrk, patch_threads): any commit since
the write runs were added to the bench.
BENCH_COMPARE: the runs to compare, by their names in `make bench`, separated by semicolons (default: the
writes: create, PATCH, join + leave). BENCH_ROUNDS (default 5) rounds of BENCH_DURATION seconds a
run; BENCH_SESSIONS, BENCH_LOAD and the rest as for `make bench`. Databases: bench_<N> for this
tree (shared with `make bench`) and bench_<N>_<the base's short hash>.

Prints, per run, both medians and the ratio this/base of each round, and their median.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
from pathlib import Path

from bench import config

DEFAULT_RUNS = "create (POST /sessions);PATCH with version;join + leave, spread"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))

# Runs in each tree's own Python, from its own bench package: load (unless BENCH_LOAD=0), serve,
# then run wrk for each name read from stdin, answering with one JSON line.
SERVE = r"""
import json, sys
from bench import config
import bench.run as bench
config.VAR.mkdir(parents=True, exist_ok=True)
if config.LOAD:
    bench.load.load(bench.log)
targets = bench.gather_targets()
specs = bench.specs(targets)
bench.connection.close()
app = bench.Server("compare-" + str(config.APP_PORT), config.APP_PORT, "sessions_project.settings")
try:
    app.wait(f"{bench.API}/schema/")
    print("READY", flush=True)
    for line in sys.stdin:
        spec = specs[line.strip()]
        threads = bench.patch_threads(targets) if spec.patch else spec.threads
        bench.connection.close()
        result = bench.run_wrk(spec, app.port, threads)
        print("RESULT " + json.dumps({"rps": result["rps"], "bad": result["bad"] + result["timeout"]}), flush=True)
finally:
    app.stop()
"""


def base_tree(ref: str) -> tuple[Path, str]:
    """A worktree of `ref` (made once per commit), with this tree's virtualenv, and the
    commit's short hash."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=config.ROOT, capture_output=True, text=True
    )
    if sha.returncode != 0:
        raise SystemExit(f"bench-compare: BENCH_BASE={ref!r} is not a commit here")
    short = sha.stdout.strip()[:12]
    tree = config.VAR / f"base-{short}"
    if not tree.exists():
        config.VAR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), sha.stdout.strip()], cwd=config.ROOT, check=True
        )
    venv = tree / ".venv"
    if not venv.exists():
        venv.symlink_to(config.ROOT / ".venv")
    return tree, short


class Side:
    """One version: its server (through its own bench package) and the answers it gives."""

    def __init__(self, name: str, tree: Path, database: str, port: int, secret: str) -> None:
        self.name = name
        env = {
            **os.environ,
            "BENCH_DATABASE": database,
            "BENCH_APP_PORT": str(port),
            "BENCH_SECRET_KEY": secret,
            "BENCH_RESULTS": os.devnull,
        }
        self.process = subprocess.Popen(
            [str(config.ROOT / ".venv" / "bin" / "python"), "-c", SERVE],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise SystemExit(f"bench-compare: the {self.name} side stopped (its output is above)")

    def run(self, spec: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(spec + "\n")
        self.process.stdin.flush()
        return json.loads(self._expect("RESULT "))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def main() -> int:
    ref = os.environ.get("BENCH_BASE", "")
    if not ref:
        raise SystemExit("bench-compare: set BENCH_BASE to the commit to compare with (e.g. BENCH_BASE=HEAD~1)")
    # Semicolons between names: the names hold commas themselves ("join + leave, spread").
    names = [name.strip() for name in os.environ.get("BENCH_COMPARE", DEFAULT_RUNS).split(";") if name.strip()]
    secret = os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64)
    tree, short = base_tree(ref)
    base = Side("base", tree, f"{config.DATABASE}_{short}", config.APP_PORT + 10, secret)
    try:
        this = Side("this", config.ROOT, config.DATABASE, config.APP_PORT + 11, secret)
    except BaseException:
        base.stop()
        raise
    got: dict[tuple[str, str], list[float]] = {}
    bad = 0
    try:
        for round_no in range(ROUNDS):
            sides = [base, this] if round_no % 2 == 0 else [this, base]
            for name in names:
                for side in sides:
                    result = side.run(name)
                    bad += result["bad"]
                    got.setdefault((side.name, name), []).append(result["rps"])
                    print(
                        f"bench-compare: round {round_no + 1} {name} ({side.name}): {result['rps']:.0f} req/s",
                        flush=True,
                    )
    finally:
        base.stop()
        this.stop()
    print(f"\n{ref} (base) against this tree, {ROUNDS} rounds of {config.DURATION} s, {config.SESSIONS} sessions:")
    print("| run | base req/s | this req/s | this/base by round | median |\n|---|---:|---:|---|---:|")
    for name in names:
        b, t = got[("base", name)], got[("this", name)]
        ratios = [this_rps / base_rps for base_rps, this_rps in zip(b, t, strict=True)]
        by_round = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"| {name} | {statistics.median(b):.0f} | {statistics.median(t):.0f} | {by_round} "
            f"| {statistics.median(ratios):.2f}x |"
        )
    if bad:
        print(f"bench-compare: {bad} answers had statuses not expected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
