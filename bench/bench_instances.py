"""One gateway against two on one PostgreSQL: messages/s end to end.

For each instance count, a fresh database on the PostgreSQL server at `--admin-url`, that
many real `referral-gateway serve` processes (each with its pipeline process, its own data
directory, one shared key ring), and a realistic ADT mix streamed flat out by `--senders`
connections spread evenly over the gateways (each connection keeps its visits' messages in
order, as an ED system does), each waiting for its ACK. Prints, per run: messages
acknowledged per second (first send to last ACK) and end to end (first send to the last
message processed, by whichever instance's pipeline claimed it).

Run: python bench/bench_instances.py [--messages 12000] [--senders 8] [--instances 1 2]
     [--rounds 1] [--admin-url postgresql+psycopg://rg:rg@127.0.0.1:5432/rg]
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
import uuid
import zlib
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7.synthetic import SyntheticEd  # noqa: E402
from bench.bench_mllp import pending, sender, stored  # noqa: E402
from bench.serve_process import ServeProcess, start_serve  # noqa: E402


def visit_number(message: str) -> str:
    pv1 = next((seg for seg in message.split("\r") if seg.startswith("PV1|")), "")
    fields = pv1.split("|")
    return fields[19] if len(fields) > 19 else ""


def run(admin_url: str, messages: list[str], instances: int, senders: int) -> tuple[float, float]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = "rg_bench_" + uuid.uuid4().hex[:8]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    gateways: list[ServeProcess] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ring = {"RG_KEYRING_FILE": str(Path(tmp) / "keys" / "keyring.json")}
            for i in range(instances):  # one after another: the first makes the key ring
                gateways.append(start_serve(Path(tmp) / f"gw{i}", url, ring))
            chunks: list[list[str]] = [[] for _ in range(senders)]
            for m in messages:
                chunks[zlib.crc32(visit_number(m).encode()) % senders].append(m)
            engine = create_engine(url)
            try:
                t0 = time.perf_counter()
                out: mp.Queue[list[float]] = mp.Queue()
                procs = [
                    mp.Process(
                        target=sender,
                        args=(gateways[i % instances].mllp_port, chunk, 0.0, out),
                    )
                    for i, chunk in enumerate(chunks)
                ]
                for p in procs:
                    p.start()
                for _ in procs:
                    out.get()
                for p in procs:
                    p.join()
                t_acked = time.perf_counter() - t0
                while pending(engine):
                    time.sleep(0.05)
                t_done = time.perf_counter() - t0
                n = stored(engine)
                if n != len(messages):
                    raise SystemExit(f"{n} stored of {len(messages)} sent")
            finally:
                engine.dispose()
    finally:
        for g in gateways:
            g.proc.send_signal(signal.SIGTERM)
        for g in gateways:
            g.proc.wait(30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return len(messages) / t_acked, len(messages) / t_done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=12000)
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1, help="alternate the counts this many times")
    ap.add_argument(
        "--admin-url",
        default=os.environ.get(
            "RG_TEST_POSTGRES_URL", "postgresql+psycopg://rg:rg@127.0.0.1:5432/rg"
        ),
    )
    args = ap.parse_args()
    ed = SyntheticEd(seed=1)
    msgs: list[str] = []
    while len(msgs) < args.messages:
        msgs.extend(ed.stream(500))
    msgs = msgs[: args.messages]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {len(msgs)} messages, {args.senders} connections"
    )
    for round_ in range(args.rounds):
        for k in args.instances:
            load = os.getloadavg()[0]
            acked, end_to_end = run(args.admin_url, msgs, k, args.senders)
            print(
                f"round {round_ + 1}, {k} instance(s): acknowledged {acked:,.0f}/s, "
                f"end to end {end_to_end:,.0f}/s (load average {load:.1f} at the start, "
                f"{time.strftime('%H:%M', time.gmtime())} UTC)",
                flush=True,
            )


if __name__ == "__main__":
    main()
