"""Queue page latency with many open referrals.

Seeds N open referrals (default 5,000, across two sites, a fifth of them claimed) through the
gateway's own stores, starts a real `referral-gateway serve` process on that data, signs in as
a youth worker of both sites and times GET /queue (the first page of 50 approach cards, newest
first, with the total) and the live-update fragment /queue/cards, over one keep-alive HTTP
connection. Prints p50 / p95 / max in milliseconds.

Run: python bench/bench_queue.py [--referrals 5000] [--requests 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve_process import start_serve  # noqa: E402
from consent.keyring import KeyRing  # noqa: E402
from consent.policy import Role  # noqa: E402
from referral_gateway.domain.accounts import check_new_account  # noqa: E402
from referral_gateway.domain.attendance import (  # noqa: E402
    Attendance,
    Coding,
    EdLocation,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.storage.accounts import AccountStore  # noqa: E402
from referral_gateway.storage.attendances import REFERRAL, AttendanceStore, referral_row  # noqa: E402
from referral_gateway.storage.casework import CASES  # noqa: E402
from referral_gateway.storage.database import make_engine, migrate  # noqa: E402

SITES = ("RXA01", "RXB02")
PASSWORD = "benchmark password 2026"
AREAS = ("MAJORS", "MINORS", "RESUS", "PAEDS")
CATEGORIES = ("bladed", "body_part", "firearm", "other")


def seed(database_url: str, keyring: KeyRing, referrals: int) -> None:
    engine = make_engine(database_url, sqlite_synchronous="NORMAL")
    migrate(engine)
    accounts = AccountStore(engine)
    now = datetime.now(UTC)
    users = []
    for name in ("worker", "other"):
        account = check_new_account(name, Role.YOUTH_WORKER.value, SITES, PASSWORD)
        users.append(
            accounts.add_user(
                account, PASSWORD, by="system:bench", now=now, must_change_password=False
            )
        )  # type: ignore[arg-type]
    store = AttendanceStore(keyring)
    rng = random.Random(5000)
    with engine.begin() as conn:
        for i in range(referrals):
            arrival = now - timedelta(minutes=referrals - i)
            site = SITES[i % 2]
            attendance = Attendance(
                site=site,
                source=Source.HL7V2,
                visit_number=f"V{i:07d}",
                patient=PatientIdentity(
                    nhs_number="9990000026",
                    local_ids=(f"MRN{i:07d}",),
                    family_name="Testington",
                    given_names="Sam",
                    birth_date=date(2009, 1, 2),
                    phone="07700 900000",
                ),
                sex=rng.choice([Sex.MALE, Sex.FEMALE]),
                patient_class="E",
                is_emergency=True,
                arrival=arrival,
                location=EdLocation(rng.choice(AREAS), f"B{rng.randrange(1, 30)}"),
                codings=(Coding("snomed", "425322008", "Stab wound"),),
                free_text=("stabbed",),
            )
            attendance_id = store.save(
                conn,
                store.row_values(
                    visit_key=f"V{i:07d}",
                    attendance=attendance,
                    age_at_arrival=rng.randrange(11, 26),
                    detection_rule="assault_signal",
                    detection={},
                    nhs_number_valid=True,
                    message_id=i + 1,
                    now=arrival,
                ),
            )
            rid = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            store.insert_referrals(
                conn,
                [
                    referral_row(
                        referral_id=rid,
                        attendance_id=attendance_id,
                        site=site,
                        detection_rule="assault_signal",
                        reasons=[
                            {
                                "rule": "snomed:425322008",
                                "description": "Stab wound",
                                "kind": "assault",
                            }
                        ],
                        injury_category=rng.choice(CATEGORIES),
                        valueset_version="bench",
                        now=arrival,
                    )
                ],
            )
            if rng.random() < 0.2:  # claimed
                who = rng.choice(users)
                conn.execute(
                    CASES.insert().values(
                        referral_id=rid,
                        version=1,
                        assigned_to=who.id,
                        claimed_at=arrival,
                        updated_at=arrival,
                    )
                )
                conn.execute(REFERRAL.update().where(REFERRAL.c.id == rid).values(status="claimed"))
    engine.dispose()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def timings(client: httpx.Client, path: str, n: int) -> list[float]:
    for _ in range(10):  # warm-up
        client.get(path).raise_for_status()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        reply = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        reply.raise_for_status()
    return out


def report(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p50 = statistics.median(ms)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    print(f"{label:44} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {ms[-1]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--referrals", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'gateway.db'}"
        keyring = KeyRing.load_or_create(data_dir / "keyring.json")
        started = time.perf_counter()
        seed(url, keyring, args.referrals)
        print(
            f"seeded {args.referrals} open referrals in {time.perf_counter() - started:.1f} s "
            f"({'PostgreSQL' if url.startswith('postgresql') else 'SQLite'})"
        )
        gateway = start_serve(data_dir, url)
        proc, base = gateway.proc, gateway.url
        try:
            with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
                page = client.get("/sign-in").text
                token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                signed = client.post(
                    "/sign-in",
                    data={"username": "worker", "password": PASSWORD, "csrf_token": token},
                )
                signed.raise_for_status()
                first = client.get("/queue").text
                total = re.search(r"(\d+) referrals", first)
                cards = first.count('<article class="card')
                print(f"queue: {total.group(1) if total else '?'} open, {cards} cards on page 1")
                print(
                    f"machine: {cpu_model()}, {os.cpu_count()} CPUs, "
                    f"Python {platform.python_version()}"
                )
                report(
                    "GET /queue (page 1 of open, both sites)",
                    timings(client, "/queue", args.requests),
                )
                report(
                    "GET /queue/cards (live-update fragment)",
                    timings(client, "/queue/cards?status=open", args.requests),
                )
                report(
                    "GET /queue?mine=1",
                    timings(client, "/queue?status=open&mine=1", args.requests // 2),
                )
                report(
                    "GET /queue?site=RXB02&page=40",
                    timings(client, "/queue?status=open&site=RXB02&page=40", args.requests // 2),
                )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
