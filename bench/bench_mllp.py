"""End-to-end MLLP benchmark: a realistic ADT mix streamed into a real `referral-gateway
serve` process (SQLite by default), measuring

1. sustained throughput, received to processed, with several senders going flat out;
2. ACK latency (p50/p99) at a paced 200 messages/s;
3. a plain hl7apy `parse_message` loop over the same messages, for comparison.

Run: python bench/bench_mllp.py [--messages 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7.client import MllpClient  # noqa: E402
from adapters.hl7.synthetic import SyntheticEd  # noqa: E402
from bench.serve_process import start_serve  # noqa: E402


def sender(port: int, messages: list[str], rate: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    latencies = []
    gap = 1.0 / rate if rate else 0.0
    start = time.perf_counter()
    with MllpClient("127.0.0.1", port) as client:
        for i, m in enumerate(messages):
            if gap:
                due = start + i * gap
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            ack = client.send(m)
            latencies.append(time.perf_counter() - t0)
            if "MSA|AA|" not in ack:
                raise SystemExit("not acknowledged AA")
    out.put(latencies)


def run_senders(port: int, chunks: list[list[str]], rate_each: float) -> list[float]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=sender, args=(port, c, rate_each, out)) for c in chunks]
    for p in procs:
        p.start()
    lat: list[float] = []
    for _ in procs:
        lat.extend(out.get())
    for p in procs:
        p.join()
    return lat


def pending(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("select count(*) from inbound_message where state = 'pending'")
            ).scalar()
            or 0
        )


def stored(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("select count(*) from inbound_message")).scalar() or 0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--paced-seconds", type=float, default=15.0)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()

    ed = SyntheticEd(seed=1)
    msgs: list[str] = []
    while len(msgs) < args.messages:
        msgs.extend(ed.stream(500))
    msgs = msgs[: args.messages]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = args.database_url or f"sqlite:///{data / 'gateway.db'}"
        gateway = start_serve(data, url)
        proc, port = gateway.proc, gateway.mllp_port
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            # 1. throughput: senders flat out, each its own slice of visits in order
            chunks = [msgs[i :: args.senders] for i in range(args.senders)]
            t0 = time.perf_counter()
            lat = run_senders(port, chunks, 0.0)
            t_acked = time.perf_counter() - t0
            while pending(engine):
                time.sleep(0.05)
            t_done = time.perf_counter() - t0
            n = stored(engine)
            print(
                f"throughput: {n} messages, {args.senders} connections: "
                f"acknowledged {n / t_acked:,.0f}/s, end to end (received to processed) "
                f"{n / t_done:,.0f}/s"
            )
            print(
                f"  ACK latency flat out: p50 {pct(lat, 0.5) * 1000:.1f} ms, "
                f"p99 {pct(lat, 0.99) * 1000:.1f} ms"
            )

            # 2. ACK latency at a paced 200 msg/s (4 senders x 50/s)
            paced_n = int(200 * args.paced_seconds)
            ed2 = SyntheticEd(seed=2, site="RYY02")
            paced: list[str] = []
            while len(paced) < paced_n:
                paced.extend(ed2.stream(200))
            paced = paced[:paced_n]
            lat = run_senders(port, [paced[i::4] for i in range(4)], 50.0)
            print(
                f"ACK latency at 200 msg/s offered ({paced_n} messages): "
                f"p50 {pct(lat, 0.5) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    # 3. hl7apy's full parse, same messages, same run
    from hl7apy.parser import parse_message

    sample = msgs[:1000]
    t0 = time.perf_counter()
    for m in sample:
        parse_message(m, find_groups=False)
    rate = len(sample) / (time.perf_counter() - t0)
    print(f"hl7apy parse_message loop on the same messages: {rate:,.0f}/s")


if __name__ == "__main__":
    main()
