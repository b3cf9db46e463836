"""A/B comparison of FHIR Bundle throughput, for judging a change on a machine whose speed
drifts (a shared VM can change by a third within minutes, more than most changes are worth).

Two real `serve` processes run side by side, A and B, each with its own data directory;
the load (the same Bundles as bench_fhir.py, `--clients` keep-alive connections) goes to
one of them at a time, alternating in short rounds, so both see the same spells of the
machine. Prints each side's rounds and mean, its CPU per Bundle, and B/A per round with the
median, which is the figure to judge by.

Each side is a code tree and environment variables, e.g.:

    python bench/ab_fhir.py --a-root /tmp/before --b-env RG_PROCESSING_BATCH=50
    git worktree add /tmp/before HEAD~1 && python bench/ab_fhir.py --a-root /tmp/before

Run: python bench/ab_fhir.py [--rounds 10] [--round-seconds 3] [--clients 8]
     [--a-root DIR] [--a-env K=V,...] [--b-root DIR] [--b-env K=V,...]
"""

from __future__ import annotations

import argparse
import http.client
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.serve_process as serve_process  # noqa: E402
from bench.bench_fhir import (  # noqa: E402
    attendance_bundle,
    child_pids,
    create_token,
    process_cpu,
)


@dataclass
class Side:
    name: str
    serve: serve_process.ServeProcess
    token: str
    rates: list[float]
    cpu_serve: float = 0.0
    cpu_children: float = 0.0
    bundles: int = 0


class Bundles:
    """Every Bundle a different person, made before the clock starts (as bench_fhir.py
    does, so the clients spend their time posting) and shared by both sides in turn."""

    def __init__(self, count: int) -> None:
        self._bodies = [attendance_bundle(n) for n in range(count)]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> bytes:
        with self._lock:
            self._next += 1
            n = self._next
        if n < len(self._bodies):
            return self._bodies[n]
        return attendance_bundle(n % 800_000)  # a longer run than planned for


def load(
    side: Side, bundles: Bundles, clients: int, seconds: float, skip: float
) -> tuple[int, int]:
    """Post flat out for `seconds`; returns the 200s answered after the first `skip`, and
    all of them."""
    stop_at = time.perf_counter() + seconds
    count_from = time.perf_counter() + skip
    counted = [0, 0]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {side.token}", "Content-Type": "application/fhir+json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", side.serve.http_port, timeout=30)
        while time.perf_counter() < stop_at:
            conn.request("POST", "/fhir", bundles.take(), headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{side.name}: answered {response.status}")
            with lock:
                counted[1] += 1
                if time.perf_counter() >= count_from:
                    counted[0] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counted[0], counted[1]


def start_side(name: str, root: str, env: str, data: Path) -> Side:
    url = f"sqlite:///{data / 'gateway.db'}"
    token = create_token(data, url)
    serve_process.ROOT = Path(root).resolve()  # the code tree this side's serve runs
    try:
        extra = dict(kv.split("=", 1) for kv in env.split(",") if kv)
        serve = serve_process.start_serve(data, url, extra)
    finally:
        serve_process.ROOT = ROOT
    return Side(f"{name} ({root}{' ' + env if env else ''})", serve, token, [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--round-seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--a-root", default=str(ROOT))
    ap.add_argument("--a-env", default="")
    ap.add_argument("--b-root", default=str(ROOT))
    ap.add_argument("--b-env", default="")
    args = ap.parse_args()
    skip = 0.5  # each round's first half second: connections opening, caches warming

    # enough for every round at 800 Bundles/s, plus the warm-ups
    bundles = Bundles(int((args.rounds * args.round_seconds + 2) * 2 * 800))
    with tempfile.TemporaryDirectory() as tmp_a, tempfile.TemporaryDirectory() as tmp_b:
        sides = [
            start_side("A", args.a_root, args.a_env, Path(tmp_a)),
            start_side("B", args.b_root, args.b_env, Path(tmp_b)),
        ]
        try:
            for side in sides:  # warm-up, not counted
                load(side, bundles, args.clients, 2.0, 2.0)
            for r in range(args.rounds):
                for side in sides if r % 2 == 0 else sides[::-1]:
                    pids = [side.serve.proc.pid, *child_pids(side.serve.proc.pid)]
                    before = [process_cpu(p) for p in pids]
                    answered, posted = load(side, bundles, args.clients, args.round_seconds, skip)
                    after = [process_cpu(p) for p in pids]
                    side.rates.append(answered / (args.round_seconds - skip))
                    side.cpu_serve += after[0] - before[0]
                    side.cpu_children += sum(after[1:]) - sum(before[1:])
                    side.bundles += posted
        finally:
            for side in sides:
                side.serve.proc.send_signal(signal.SIGTERM)
                side.serve.proc.wait(30)

    print(
        f"{args.rounds} rounds of {args.round_seconds:.0f} s per side, {args.clients} clients, "
        "SQLite; Bundles/s per round:"
    )
    for side in sides:
        per = 1000 / max(1, side.bundles)
        print(
            f"  {side.name}: mean {statistics.mean(side.rates):.0f}/s  "
            f"[{' '.join(f'{x:.0f}' for x in side.rates)}]  CPU per Bundle: serve "
            f"{side.cpu_serve * per:.2f} ms, its other processes {side.cpu_children * per:.2f} ms"
        )
    a, b = sides
    ratios = [y / x for x, y in zip(a.rates, b.rates, strict=True) if x]
    print(
        f"  B/A per round: median {statistics.median(ratios):.3f}  "
        f"[{' '.join(f'{x:.2f}' for x in ratios)}]"
    )


if __name__ == "__main__":
    main()
