"""FHIR transaction-Bundle benchmark against a real `referral-gateway serve` process.

Each Bundle is what an ED system sends for one attendance: a Patient (conditional create on
the NHS number), an Encounter and a Condition, tied with urn:uuid references; every Bundle is
a different synthetic person. Several client threads in this process post flat out over
keep-alive HTTP connections for `--seconds` (after a short warm-up), then the run waits for
the pipeline to process what was stored. Prints:

- Bundles/s answered with 200 (each one committed before its answer), latency p50 / p99;
- CPU per Bundle in the serve process, its pipeline process and these clients;
- how far the pipeline (decode, detect, candidates) was behind when the clients stopped, and
  the end-to-end rate from first post to last resource processed;
- with `--mllp-rate N`, the ACK latency of an HL7 feed paced at N messages/s into the same
  server while the Bundles are being posted (a mixed load).

Run: python bench/bench_fhir.py [--seconds 15] [--clients 8] [--mllp-rate 200]
     [--database-url URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve_process import child_pids, start_serve  # noqa: E402

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def nhs_number(n: int) -> str:
    """The n-th number of the 999 test range with a valid check digit (n < ~900,000)."""
    base = 999_000_000 + n
    while True:
        digits = str(base)
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check != 10:
            return f"{digits}{0 if check == 11 else check}"
        base += 1_000_000  # keep n's numbers apart from n+1's


def attendance_bundle(n: int) -> bytes:
    p, e = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    nhs = nhs_number(n)
    young = n % 3 != 0
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "identifier": [
            {"system": NHS, "value": nhs},
            {"system": "https://rxx.example.nhs.uk/Id/mrn", "value": f"MRN{n:07d}"},
        ],
        "name": [{"use": "official", "family": "Benchmarkson", "given": ["Sam"]}],
        "gender": "female" if n % 2 else "male",
        "birthDate": "2009-05-17" if young else "1971-02-03",
        "telecom": [{"system": "phone", "value": "07700 900456", "use": "mobile"}],
        "address": [
            {
                "use": "home",
                "line": ["2 Example Road"],
                "city": "Exampleton",
                "postalCode": "ZZ99 4BB",
            }
        ],
    }
    encounter = {
        "resourceType": "Encounter",
        "identifier": [
            {
                "use": "official",
                "system": "https://rxx.example.nhs.uk/Id/ed-visit",
                "value": f"BENCH-{n:08d}",
            }
        ],
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": p},
        "period": {"start": "2025-03-01T21:14:00Z"},
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "425322008",
                        "display": "Stab wound",
                    }
                ],
                "text": "stabbed in arm",
            }
        ],
        "location": [{"location": {"display": "Majors"}, "status": "active"}],
    }
    condition = {
        "resourceType": "Condition",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "52684005", "display": "Assault"}
            ]
        },
        "subject": {"reference": p},
        "encounter": {"reference": e},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": p,
                "resource": patient,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={NHS}|{nhs}",
                },
            },
            {
                "fullUrl": e,
                "resource": encounter,
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": condition,
                "request": {"method": "POST", "url": "Condition"},
            },
        ],
    }
    return json.dumps(bundle).encode()


def create_token(data_dir: Path, database_url: str) -> str:
    env = dict(os.environ, RG_DATA_DIR=str(data_dir), RG_DATABASE_URL=database_url)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "referral_gateway.entrypoints.cli",
            "tokens",
            "create",
            "--site",
            "RXX01",
            "--name",
            "bench-ed-system",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    match = re.search(r"^(rgf_\S+)$", out, re.MULTILINE)
    if not match:
        raise SystemExit("tokens create printed no token")
    return match.group(1)


class Client(threading.Thread):
    def __init__(
        self, port: int, token: str, bodies: list[bytes], stop_at: list[float], measure_from: float
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.bodies, self.stop_at, self.measure_from = (
            port,
            bodies,
            stop_at,
            measure_from,
        )
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        self.latencies: list[float] = []
        self.sent = self.failed = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        for body in self.bodies:
            if time.perf_counter() >= self.stop_at[0]:
                break
            t0 = time.perf_counter()
            conn.request("POST", "/fhir", body, self.headers)
            response = conn.getresponse()
            response.read()
            self.sent += 1
            if response.status != 200:
                self.failed += 1
            if t0 >= self.measure_from:
                self.latencies.append(time.perf_counter() - t0)
        conn.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(engine: Any, where: str = "") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text(f"select count(*) from inbound_message {where}")).scalar() or 0
        )


class PacedMllp:
    """ADT messages sent at a steady rate on 4 connections, in processes of their own."""

    def __init__(self, port: int, rate: float, seconds: float) -> None:
        from adapters.hl7.synthetic import SyntheticEd
        from bench.bench_mllp import sender

        ed = SyntheticEd(seed=7, site="RYY02")
        messages: list[str] = []
        while len(messages) < int(rate * seconds):
            messages.extend(ed.stream(200))
        messages = messages[: int(rate * seconds)]
        self.out: mp.Queue[list[float]] = mp.Queue()
        self.procs = [
            mp.Process(target=sender, args=(port, messages[i::4], rate / 4, self.out))
            for i in range(4)
        ]
        for p in self.procs:
            p.start()

    def latencies(self) -> list[float]:
        found = [lat for _ in self.procs for lat in self.out.get()]
        for p in self.procs:
            p.join()
        return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--max-bundles", type=int, default=40_000)
    ap.add_argument("--database-url", default="")
    ap.add_argument(
        "--mllp-rate",
        type=float,
        default=0.0,
        help="also send ADT messages paced at this rate (4 connections) and time their ACKs",
    )
    ap.add_argument(
        "--processing-batch",
        type=int,
        default=0,
        help="RG_PROCESSING_BATCH for the server (default: the gateway's own)",
    )
    args = ap.parse_args()
    extra_env = {"RG_PROCESSING_BATCH": str(args.processing_batch)} if args.processing_batch else {}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    bodies = [attendance_bundle(n) for n in range(args.max_bundles)]

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = args.database_url or f"sqlite:///{data / 'gateway.db'}"
        token = create_token(data, url)
        gateway = start_serve(data, url, extra_env)
        proc, port = gateway.proc, gateway.http_port
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            t0 = time.perf_counter()
            measure_from = t0 + args.warmup
            stop_at = [measure_from + args.seconds]
            clients = [
                Client(port, token, bodies[i :: args.clients], stop_at, measure_from)
                for i in range(args.clients)
            ]
            for c in clients:
                c.start()
            time.sleep(args.warmup)
            mllp = (
                PacedMllp(gateway.mllp_port, args.mllp_rate, args.seconds)
                if args.mllp_rate
                else None
            )
            children = child_pids(proc.pid)
            cpu_start = [process_cpu(pid) for pid in (proc.pid, *children)]
            client_start = time.process_time()
            for c in clients:
                c.join()
            acks = mllp.latencies() if mllp is not None else []
            t_clients = time.perf_counter()
            cpu_used = [
                process_cpu(pid) - c0
                for pid, c0 in zip((proc.pid, *children), cpu_start, strict=True)
            ]
            client_cpu = time.process_time() - client_start
            measured = [lat for c in clients for lat in c.latencies]
            sent = sum(c.sent for c in clients)
            failed = sum(c.failed for c in clients)
            behind = count(engine, "where state = 'pending'")
            while count(engine, "where state = 'pending'"):
                time.sleep(0.1)
            t_done = time.perf_counter()
            stored = count(engine)
            print(
                f"FHIR transaction Bundles (Patient + Encounter + Condition), "
                f"{args.clients} clients, {args.seconds:.0f} s after {args.warmup:.0f} s "
                f"warm-up, {'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}"
                + (f", RG_PROCESSING_BATCH={args.processing_batch}:" if extra_env else ":")
            )
            print(
                f"  answered 200: {len(measured) / args.seconds:,.0f} Bundles/s "
                f"({len(measured)} in the measured window; {failed} not 200 of {sent})"
            )
            per_bundle = 1000 / max(1, len(measured))
            print(
                f"  latency: p50 {pct(measured, 0.5) * 1000:.1f} ms, "
                f"p99 {pct(measured, 0.99) * 1000:.1f} ms"
            )
            print(
                f"  CPU per Bundle answered: serve process {cpu_used[0] * per_bundle:.2f} ms, "
                "its other processes (pipeline, MLLP listener) "
                f"{sum(cpu_used[1:]) * per_bundle:.2f} ms, "
                f"these clients {client_cpu * per_bundle:.2f} ms"
            )
            print(
                f"  pipeline: {behind} of {stored} resource versions still pending when the "
                f"clients stopped; all processed {t_done - t_clients:.1f} s later; end to end "
                f"{sent / (t_done - t0):,.0f} Bundles/s ({stored / (t_done - t0):,.0f} "
                f"resources/s) from first post to last processed"
            )
            if acks:
                print(
                    f"  HL7 ACKs at {args.mllp_rate:.0f} messages/s meanwhile: "
                    f"p50 {pct(acks, 0.5) * 1000:.1f} ms, p99 {pct(acks, 0.99) * 1000:.1f} ms "
                    f"({len(acks)} messages)"
                )
            with engine.connect() as conn:
                referrals = conn.execute(text("select count(*) from referral")).scalar()
            print(f"  candidates: {referrals} (two thirds of the Bundles are young people)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
