"""Load: 50 MLLP connections and 100 HTTP clients (half reading the youth workers' queue page
as signed-in users, half posting FHIR transaction Bundles) against a real `referral-gateway
serve` process for several minutes, with the resident memory of `serve` and of its pipeline
process sampled throughout.

Every sender is paced (the rates are totals over all connections or clients) and waits for
its answer, as real senders and browsers do. Prints the answers (MLLP AA, HTTP 200, anything
else), latency p50 / p99 for information, and resident memory at the start, at its peak and at
the end, with the slope of a least-squares line over the run after its first fifth (warm-up);
memory is called flat when that line rises by less than 5% of the mean (or 8 MiB) over the
measured window.

Run: python bench/load.py [--seconds 300] [--mllp-connections 50] [--http-clients 100]
     [--mllp-rate 100] [--http-rate 100] [--database-url URL]
     (the test suite runs it for a few seconds: tests/spine/test_load.py)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7.client import MllpClient  # noqa: E402
from adapters.hl7.synthetic import SyntheticEd  # noqa: E402
from bench.bench_fhir import attendance_bundle, create_token  # noqa: E402
from bench.faults import machine, msa  # noqa: E402
from bench.private_postgres import PrivatePostgres  # noqa: E402
from bench.serve_process import ServeProcess, child_pids, resident_bytes, start_serve  # noqa: E402

PASSWORD = "load test password 2026"
OWN_PASSWORD = "the load worker chose this one"
MIB = 1024 * 1024


@dataclass
class Sample:
    at: float  # seconds since the load started
    serve: int  # bytes
    pipeline: int

    @property
    def total(self) -> int:
        return self.serve + self.pipeline


@dataclass
class Answers:
    counts: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, answer: str, seconds: float) -> None:
        with self.lock:
            self.counts[f"{kind} {answer}"] += 1
            self.latencies.setdefault(kind, []).append(seconds)


def add_account(data_dir: Path, database_url: str) -> None:
    env = dict(os.environ, RG_DATA_DIR=str(data_dir), RG_DATABASE_URL=database_url)
    subprocess.run(
        [
            *(sys.executable, "-m", "referral_gateway.entrypoints.cli", "users", "add"),
            *("--username", "loadworker", "--role", "youth_worker", "--site", "RXX01"),
        ],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    )


def signed_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    page = client.get("/sign-in").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("no CSRF token on the sign-in page")
    landed = client.post(
        "/sign-in",
        data={"username": "loadworker", "password": PASSWORD, "csrf_token": match.group(1)},
    )
    landed.raise_for_status()
    if landed.url.path == "/account/password":  # an account made by `users add` sets its own
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', landed.text)
        if not csrf:
            raise RuntimeError("no CSRF token on the change-password page")
        chosen = client.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": OWN_PASSWORD,
                "confirm_password": OWN_PASSWORD,
                "csrf_token": csrf.group(1),
            },
        )
        chosen.raise_for_status()
        if chosen.url.path != "/queue":
            raise RuntimeError(f"setting the password landed on {chosen.url.path}")
    return client


class Paced:
    """One sender's clock: `rate` per second from a random phase, skipping missed slots."""

    def __init__(self, rate: float, phase: float, stop: threading.Event) -> None:
        self.gap, self.stop = 1.0 / rate, stop
        self.due = time.monotonic() + phase * self.gap

    def wait(self) -> bool:
        now = time.monotonic()
        if self.due < now - self.gap:
            self.due = now
        if self.stop.wait(max(0.0, self.due - now)):
            return False
        self.due += self.gap
        return True


@dataclass
class LoadOutcome:
    seconds: float
    mllp_connections: int
    http_clients: int
    answers: Counter[str]
    latencies: dict[str, tuple[float, float]]  # kind: (p50, p99) in ms
    samples: list[Sample]
    failures: list[str]

    @property
    def good(self) -> bool:
        return not self.failures and all(
            k.endswith((" AA", " 200")) for k, n in self.answers.items() if n
        )

    def memory(self) -> dict[str, float]:
        """MiB: start, peak, end (serve + pipeline), the slope in MiB/min and the rise of the
        fitted line over the measured window."""
        s = self.samples
        measured = [x for x in s if x.at >= s[-1].at / 5] or s
        half = len(measured) // 2
        slope, early, late = (
            _slope(measured),
            _slope(measured[: half + 1]),
            _slope(measured[half:]),
        )
        window = measured[-1].at - measured[0].at
        return {
            "start": s[0].total / MIB,
            "peak": max(x.total for x in s) / MIB,
            "end": s[-1].total / MIB,
            "serve_start": s[0].serve / MIB,
            "serve_end": s[-1].serve / MIB,
            "pipeline_start": s[0].pipeline / MIB,
            "pipeline_end": s[-1].pipeline / MIB,
            "slope_per_min": slope * 60,
            "early_per_min": early * 60,
            "late_per_min": late * 60,
            "rise": slope * window,
            "mean": statistics.fmean(x.total for x in measured) / MIB,
        }

    def flat(self) -> bool:
        m = self.memory()
        return m["rise"] < max(8.0, 0.05 * m["mean"])

    def lines(self, *, verdict: bool) -> list[str]:
        m = self.memory()
        answers = ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items()))
        out = [
            f"{self.mllp_connections} MLLP connections and {self.http_clients} HTTP clients for "
            f"{self.seconds:.0f} s",
            f"  answers: {answers}",
            "  latency p50 / p99: "
            + "; ".join(
                f"{k} {a:.1f} / {b:.1f} ms" for k, (a, b) in sorted(self.latencies.items())
            ),
            f"  resident memory, serve + pipeline: start {m['start']:.1f} MiB, peak "
            f"{m['peak']:.1f} MiB, end {m['end']:.1f} MiB (serve {m['serve_start']:.1f} → "
            f"{m['serve_end']:.1f}, pipeline {m['pipeline_start']:.1f} → "
            f"{m['pipeline_end']:.1f}); slope after warm-up {m['slope_per_min']:+.2f} MiB/min "
            f"({m['early_per_min']:+.2f} in its first half, {m['late_per_min']:+.2f} in its "
            f"second; {m['rise']:+.1f} MiB over the measured window, {len(self.samples)} "
            "samples)",
        ]
        if verdict:
            out.append(
                "  memory stayed flat"
                if self.flat()
                else "  memory did NOT stay flat (the fitted line rose by 5% of the mean or more)"
            )
        out.extend(f"  failure: {f}" for f in self.failures[:10])
        return out


def _slope(samples: list[Sample]) -> float:
    """MiB per second of a least-squares line through the samples' totals (0 for < 3)."""
    if len(samples) < 3 or samples[-1].at <= samples[0].at:
        return 0.0
    return statistics.linear_regression(
        [x.at for x in samples], [x.total / MIB for x in samples]
    ).slope


def run_load(
    serve: ServeProcess,
    token: str,
    *,
    seconds: float,
    mllp_connections: int = 50,
    http_clients: int = 100,
    mllp_rate: float = 100.0,
    http_rate: float = 100.0,
    sample_every: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> LoadOutcome:
    stop = threading.Event()
    answers = Answers()
    failures: list[str] = []
    samples: list[Sample] = []
    count = int(mllp_rate * seconds * 1.2) + mllp_connections
    ed = SyntheticEd(seed=5, site="RXX01", assault_share=0.2)
    messages = list(ed.stream(count))[:count]

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Exception as exc:  # counted and printed: the run itself goes on
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

        return run

    def mllp(index: int) -> None:
        pace = Paced(mllp_rate / mllp_connections, index / mllp_connections, stop)
        with MllpClient("127.0.0.1", serve.mllp_port, timeout=30) as client:
            for message in messages[index::mllp_connections]:
                if not pace.wait():
                    return
                t0 = time.perf_counter()
                code, _ = msa(client.send(message).encode())
                answers.add("MLLP", code or "?", time.perf_counter() - t0)

    def fhir(index: int) -> None:
        pace = Paced(http_rate / http_clients, index / http_clients, stop)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        n = index * 1_000_000
        with httpx.Client(base_url=serve.url, timeout=30) as client:
            while pace.wait():
                n += 1
                t0 = time.perf_counter()
                status = client.post("/fhir", content=attendance_bundle(n), headers=headers)
                answers.add("FHIR POST", str(status.status_code), time.perf_counter() - t0)

    session = signed_in(serve.url)  # one sign-in (Argon2 is slow on purpose), a browser each
    cookies = dict(session.cookies)
    session.close()

    def queue(index: int) -> None:
        pace = Paced(http_rate / http_clients, index / http_clients, stop)
        client = httpx.Client(base_url=serve.url, timeout=30, cookies=cookies)
        try:
            while pace.wait():
                t0 = time.perf_counter()
                page = client.get("/queue")
                answers.add("GET /queue", str(page.status_code), time.perf_counter() - t0)
        finally:
            client.close()

    def sample() -> None:
        while True:
            children = child_pids(serve.proc.pid)
            samples.append(
                Sample(
                    time.monotonic() - started,
                    resident_bytes(serve.proc.pid),
                    sum(resident_bytes(pid) for pid in children),
                )
            )
            if stop.wait(sample_every):
                return

    threads = [threading.Thread(target=guarded(sample), daemon=True)]
    threads += [
        threading.Thread(target=guarded(lambda i=i: mllp(i)), daemon=True)
        for i in range(mllp_connections)
    ]
    threads += [
        threading.Thread(target=guarded(lambda i=i: (fhir if i % 2 else queue)(i)), daemon=True)
        for i in range(http_clients)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - started < seconds:
        time.sleep(min(10.0, seconds / 10))
        if progress and samples:
            last = samples[-1]
            progress(
                f"{time.monotonic() - started:.0f}/{seconds:.0f} s, "
                f"{sum(answers.counts.values())} answers, RSS serve {last.serve / MIB:.1f} MiB "
                f"+ pipeline {last.pipeline / MIB:.1f} MiB"
            )
    stop.set()
    for t in threads:
        t.join(60)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return LoadOutcome(
        seconds=time.monotonic() - started,
        mllp_connections=mllp_connections,
        http_clients=http_clients,
        answers=answers.counts,
        latencies={k: (pct(v, 0.5), pct(v, 0.99)) for k, v in answers.latencies.items() if v},
        samples=samples,
        failures=failures,
    )


def prepared_serve(data: Path, database_url: str) -> tuple[ServeProcess, str]:
    """A `serve` with a FHIR token and a youth worker of its site."""
    token = create_token(data, database_url)
    add_account(data, database_url)
    # every MLLP connection here comes from 127.0.0.1: lift the per-address cap (a real ED
    # feed is a few connections per interface engine) to the listener's whole size
    limits = {"RG_MLLP_MAX_CONNECTIONS_PER_ADDRESS": "64"}
    return start_serve(data, database_url, limits, log_file=data.parent / "serve.log"), token


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--mllp-connections", type=int, default=50)
    ap.add_argument("--http-clients", type=int, default=100)
    ap.add_argument("--mllp-rate", type=float, default=100.0, help="messages/s, all connections")
    ap.add_argument("--http-rate", type=float, default=100.0, help="requests/s, all clients")
    ap.add_argument("--database-url", default="")
    ap.add_argument(
        "--private-postgres",
        action="store_true",
        help="on a PostgreSQL 15 cluster of the run's own (bench/private_postgres.py)",
    )
    args = ap.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}", flush=True)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rg-load-"))
        data = Path(tmp) / "data"
        url = args.database_url or f"sqlite:///{data / 'gateway.db'}"
        if args.private_postgres:
            url = stack.enter_context(PrivatePostgres()).url
        data.mkdir()
        serve, token = prepared_serve(data, url)
        try:
            outcome = run_load(
                serve,
                token,
                seconds=args.seconds,
                mllp_connections=args.mllp_connections,
                http_clients=args.http_clients,
                mllp_rate=args.mllp_rate,
                http_rate=args.http_rate,
                progress=lambda line: print(f"  … {line}", flush=True),
            )
        finally:
            serve.proc.terminate()
            serve.proc.wait(30)
    print(f"database: {'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}")
    for line in outcome.lines(verdict=True):
        print(line, flush=True)
    sys.exit(0 if outcome.good and outcome.flat() else 1)


if __name__ == "__main__":
    main()
