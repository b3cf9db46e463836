"""Benchmark: build a year's monthly reports for one large site from the database.

Synthetic data: 500,000 ED attendances over one calendar year at one site, 20,000 of them
candidate referrals (assault signal, aged 11-25), 20,000 more candidates the year before
(whose re-attendance the year's reports show), a further 2% adult assaults, patients
drawn from a pool so that some come back (re-attendance by keyed hash). Each candidate has
what the youth workers would have recorded: consent records (about 60% given, 15% declined,
15% not approached, 3% safeguarding overrides), and for those given or overridden the
queue's casework rows: 1 to 3 contact attempts (face to face or phone), support, onward
referrals and signposting, closure with an outcome, 6-month follow-ups. Then times, a few
times over, what the dashboard and the 06:00 push do for a year: the facts query (with the
consent and casework joins), the monthly screened counts, building the 12 reports and
applying disclosure control.

Run: python bench/bench_reports.py [--attendances 500000] [--candidates 20000]
                                   [--database-url URL]   (default: a temporary SQLite file)
For PostgreSQL give an admin URL with --postgres-admin-url: a throwaway database is made.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Table, create_engine, insert, text  # noqa: E402

from referral_gateway.domain.report_period import ReportMonth  # noqa: E402
from referral_gateway.domain.report_published import publish  # noqa: E402
from referral_gateway.services.reporting import ReportService, gc_pacing  # noqa: E402
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL  # noqa: E402
from referral_gateway.storage.casework import CASES, CONTACTS, ONWARD  # noqa: E402
from referral_gateway.storage.consent_tables import CONSENT  # noqa: E402
from referral_gateway.storage.database import make_engine, migrate  # noqa: E402
from referral_gateway.storage.report_facts import SqlFacts  # noqa: E402

SITE = "RBENCH"
YEAR = 2025
SIGNALS = [
    "snomed:52684005",
    "snomed:425322008",
    "icd10:X99",
    "icd10:Y04",
    "text:stabbed",
    "text:assaulted",
]
INJURIES = ["bladed", "body_part", "body_part", "other", "firearm", "sexual", "exploitation"]
CHUNK = 10_000
PROCESSING = timedelta(seconds=2)  # arrival to the row's creation, as the pipeline does it


def generate(engine, attendances: int, candidates: int, prior: int, seed: int = 7) -> float:
    """`attendances` in the report year, `candidates` of them candidates, plus `prior`
    candidates the year before (the cohorts whose re-attendance the year's reports show)."""
    rng = random.Random(seed)
    start = datetime(YEAR, 1, 1, tzinfo=UTC)
    seconds = int((datetime(YEAR + 1, 1, 1, tzinfo=UTC) - start).total_seconds())
    candidate_ids = set(rng.sample(range(1, attendances + 1), candidates))
    candidate_ids |= set(range(attendances + 1, attendances + prior + 1))
    pool = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(attendances * 3 // 5)]
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    work: list[tuple[Table, dict[str, Any]]] = []
    for i in range(1, attendances + prior + 1):
        arrival = start + timedelta(seconds=rng.randrange(seconds))
        if i > attendances:  # the year before
            arrival -= timedelta(days=365)
        is_candidate = i in candidate_ids
        adult_assault = not is_candidate and rng.random() < 0.02
        reasons = []
        if is_candidate or adult_assault:
            reasons.append(
                {"rule": rng.choice(SIGNALS), "description": "synthetic", "kind": "assault"}
            )
        rule = (
            "assault_signal"
            if is_candidate
            else "age_out_of_band"
            if adult_assault
            else "no_assault_signal"
        )
        injury = rng.choice(INJURIES) if reasons else None
        rows.append(
            {
                "id": i,
                "site": SITE,
                "visit_key": f"V{i}",
                "source": "hl7v2",
                "status": "discharged",
                "arrival_at": arrival,
                "age_at_arrival": rng.randint(11, 25) if is_candidate else rng.randint(0, 95),
                "sex": rng.choice(("male", "male", "female", "unknown")),
                "patient_class": "E",
                "is_emergency": True,
                "codings_json": "[]",
                "flags_json": "[]",
                "detection_rule": rule,
                "detection_json": json.dumps(
                    {
                        "candidate": is_candidate,
                        "rule": rule,
                        "reasons": reasons,
                        "injury_category": injury,
                    }
                ),
                "nhs_number_hash": rng.choice(pool),
                "created_at": arrival + PROCESSING,
                "updated_at": arrival + PROCESSING,
            }
        )
        if is_candidate:
            referral_id = str(uuid.uuid4())
            work.extend(_casework(rng, referral_id, arrival))
            refs.append(
                {
                    "id": referral_id,
                    "attendance_id": i,
                    "site": SITE,
                    "status": "new",
                    "detection_rule": "assault_signal",
                    "detection_reasons_json": json.dumps(reasons),
                    "injury_category": injury,
                    "valueset_version": "bench",
                    "created_at": arrival + PROCESSING,
                    "updated_at": arrival + PROCESSING,
                }
            )
        if len(rows) >= CHUNK:
            _flush(engine, rows, refs, work)
            rows, refs, work = [], [], []
    _flush(engine, rows, refs, work)
    # fresh statistics (and, on PostgreSQL, a visibility map), as autovacuum would leave them
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"))
    return time.perf_counter() - began


def _flush(engine, rows, refs, work) -> None:
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(ATTENDANCE), rows)
        if refs:
            conn.execute(insert(REFERRAL), refs)
        for table in (CONSENT, CASES, CONTACTS, ONWARD):
            batch = [values for t, values in work if t is table]
            if batch:
                keys = {k for values in batch for k in values}
                conn.execute(insert(table), [dict.fromkeys(keys) | v for v in batch])


NOT_APPROACHED = ["discharged_before_approach", "too_unwell", "in_police_custody"]
CLOSURES = ["support_completed", "referred_on", "signposted", "disengaged", "no_contact"]
SERVICES = ["mental_health", "substance_misuse", "education_employment", "youth_services"]
CONTACT_OUTCOMES = ["engaged", "engaged", "spoke_not_engaged", "no_answer", "message_left"]


def _casework(rng: random.Random, rid: str, arrival: datetime) -> list[tuple[Table, dict]]:
    """What the youth workers recorded for one candidate, as rows for the consent and
    casework tables (the shapes `services.casework` writes)."""
    out: list[tuple[Table, dict]] = []
    roll = rng.random()
    minutes = rng.randint(5, 240)
    recorded = arrival + timedelta(minutes=minutes)
    record = {"referral_id": rid, "seq": 1, "recorded_by": "yw-1", "recorded_at": recorded}
    if roll < 0.07:
        return out  # awaiting an outcome
    if roll < 0.22:
        reason = rng.choice(NOT_APPROACHED)
        out.append(
            (CONSENT, record | {"outcome": "not_approached", "not_approached_reason": reason})
        )
        return out
    if roll < 0.37:
        out.append((CONSENT, record | {"outcome": "declined"}))
        return out
    if roll < 0.40:
        out.append(
            (CONSENT, record | {"outcome": "safeguarding_override", "override_at": recorded})
        )
    else:
        out.append((CONSENT, record | {"outcome": "given", "giver": "young_person_16_plus"}))
    at = arrival + timedelta(minutes=rng.randint(5, minutes))
    for _ in range(rng.randint(1, 3)):
        out.append(
            (
                CONTACTS,
                {
                    "referral_id": rid,
                    "at": at,
                    "method": rng.choice(("face_to_face", "phone")),
                    "outcome": rng.choice(CONTACT_OUTCOMES),
                    "recorded_by": "yw-1",
                    "recorded_at": at + timedelta(minutes=30),
                },
            )
        )
        at += timedelta(days=rng.randint(1, 5))
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        out.append(
            (
                ONWARD,
                {
                    "referral_id": rid,
                    "kind": rng.choice(("referral", "signpost")),
                    "service_type": rng.choice(SERVICES),
                    "on_date": (at + timedelta(days=7)).date(),
                    "recorded_by": "yw-1",
                    "recorded_at": at + timedelta(days=7),
                },
            )
        )
    supported = rng.random() < 0.4
    closed = at + timedelta(days=rng.randint(14, 90)) if rng.random() < 0.7 else None
    followed = (
        closed + timedelta(days=rng.randint(180, 200)) if closed and rng.random() < 0.3 else None
    )
    out.append(
        (
            CASES,
            {
                "referral_id": rid,
                "version": 3,
                "assigned_to": "yw-1",
                "claimed_at": recorded,
                "support_tier": "short" if supported else None,
                "support_started_on": recorded.date() if supported else None,
                "closed_at": closed,
                "closure_outcome": rng.choice(CLOSURES) if closed else None,
                "follow_up_due_on": (closed + timedelta(days=183)).date() if closed else None,
                "follow_up_done_at": followed,
                "follow_up_outcome": "reached_no_further_need" if followed else None,
                "updated_at": closed or recorded,
            },
        )
    )
    return out


def year_of_reports(engine) -> dict[str, float]:
    """The whole job (facts query, screened counts, 12 reports, disclosure control) timed
    end to end, then its two queries alone to show where the time goes."""
    months = [ReportMonth(YEAR, m) for m in range(1, 13)]
    facts = SqlFacts(engine)
    t0 = time.perf_counter()
    reports = ReportService(facts).monthly_reports(SITE, months)
    published = [publish(reports[m]) for m in months]
    t1 = time.perf_counter()
    screened = facts.screened_counts(SITE, months[0], months[-1])
    t2 = time.perf_counter()
    with gc_pacing.batch():  # as the report service runs it
        facts.report_facts(SITE, months[0], months[-1])
    t3 = time.perf_counter()
    assert sum(screened.values()) == sum(r.count("screened") for r in reports.values())
    for measure in ("consent_given", "contacted", "engaged", "referred_on", "closed"):
        assert sum(r.count(measure) for r in reports.values()) > 0, measure  # joins at work
    assert len(published) == 12
    return {
        "year_of_reports_s": t1 - t0,
        "of_which_screened_s": t2 - t1,
        "of_which_facts_s": t3 - t2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attendances", type=int, default=500_000)
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument(
        "--prior-candidates",
        type=int,
        default=20_000,
        help="candidates in the year before (re-attendance cohorts)",
    )
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    parser.add_argument(
        "--postgres-admin-url", help="make a throwaway PostgreSQL database through this URL"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    cleanup = None
    if args.postgres_admin_url:
        name = "rg_bench_" + uuid.uuid4().hex[:8]
        admin = create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    elif args.database_url:
        url = args.database_url
    else:
        tmp = tempfile.mkdtemp(prefix="rg-bench-")
        url = f"sqlite:///{tmp}/bench.db"

        def cleanup() -> None:
            shutil.rmtree(tmp, ignore_errors=True)

    engine = (
        make_engine(url, sqlite_synchronous="OFF")
        if url.startswith("sqlite")
        else (make_engine(url))
    )
    try:
        migrate(engine)
        print(
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{engine.dialect.name}, {args.attendances:,} attendances, "
            f"{args.candidates:,} candidates (+{args.prior_candidates:,} the year before)"
        )
        load = generate(engine, args.attendances, args.candidates, args.prior_candidates)
        print(f"loaded in {load:.1f} s")
        runs = [year_of_reports(engine) for _ in range(args.repeat)]
        totals = [r["year_of_reports_s"] for r in runs]
        for key in runs[0]:
            print(f"  {key:20} median {statistics.median(r[key] for r in runs):.3f} s")
        print(
            f"a year's report (12 months, from the database): median "
            f"{statistics.median(totals):.3f} s, best {min(totals):.3f} s, "
            f"worst {max(totals):.3f} s over {args.repeat} runs"
        )
    finally:
        engine.dispose()
        if cleanup:
            cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
