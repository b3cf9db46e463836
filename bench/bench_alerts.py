"""Alert latency benchmark: from the MLLP ACK of a new assault attendance to its alert
leaving the gateway, with batching off (`RG_ALERT_BATCH_SECONDS=0`).

A real `referral-gateway serve` process (pipeline in its own process, SQLite by default)
gets one A04 at a time over MLLP; the team-chat webhook (`RG_ALERT_WEBHOOK_URL`) points at
an HTTP server in this process, which notes when each POST arrives. The figure is ACK
received → webhook POST received, on one clock (so it includes the loopback HTTP hop and is
an upper bound on "leaving the gateway"). Messages are sent one after another, each after
the previous alert arrived.

Run: python bench/bench_alerts.py [--messages 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7.client import MllpClient  # noqa: E402
from adapters.hl7.synthetic import Person, Visit, adt  # noqa: E402
from bench.serve_process import start_serve  # noqa: E402


class Arrivals:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = threading.Event()

    def server(self) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.perf_counter()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.times.append(at)
                owner.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    arrivals = Arrivals()
    http = arrivals.server()
    threading.Thread(target=http.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{http.server_address[1]}/room"
    arrival = datetime.now(UTC).replace(microsecond=0)
    person = Person("MRN0000001", "9990000026", "Testington", "Sam", date(2010, 1, 2), "M")
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = args.database_url or f"sqlite:///{data / 'gateway.db'}"
        serve = start_serve(
            data,
            url,
            {"RG_ALERT_WEBHOOK_URL": hook, "RG_ALERT_BATCH_SECONDS": "0"},
        )
        try:
            with MllpClient("127.0.0.1", serve.mllp_port) as client:
                for n in range(args.messages + 10):  # the first 10 warm up
                    visit = Visit(
                        person,
                        f"V{n:07d}",
                        "RXX01",
                        arrival,
                        "MAJORS",
                        "B3",
                        complaint="stabbed in the arm",
                    )
                    arrivals.event.clear()
                    before = len(arrivals.times)
                    ack = client.send(adt("A04", visit, f"B{n:08d}", sent=arrival))
                    acked = time.perf_counter()
                    if "MSA|AA|" not in ack:
                        raise SystemExit("not acknowledged AA")
                    deadline = time.monotonic() + 10
                    while len(arrivals.times) == before:
                        if not arrivals.event.wait(max(0.0, deadline - time.monotonic())):
                            raise SystemExit(f"no alert for message {n} within 10 s")
                    if n >= 10:
                        latencies.append(arrivals.times[before] - acked)
        finally:
            serve.proc.send_signal(signal.SIGTERM)
            serve.proc.wait(30)
            http.shutdown()
    ms = [x * 1000 for x in latencies]
    print(
        json.dumps(
            {
                "messages": len(ms),
                "ack_to_alert_ms": {
                    "p50": round(percentile(ms, 50), 1),
                    "p99": round(percentile(ms, 99), 1),
                    "mean": round(statistics.mean(ms), 1),
                    "max": round(max(ms), 1),
                },
                "database": "PostgreSQL" if args.database_url else "SQLite",
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
