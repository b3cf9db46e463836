"""Synthetic attendance and referral rows written straight into the spine tables, for the
database side of the reports (SQL facts, the hub over HTTP, the benchmark). No identity is
stored at all; NHS-number hashes are made-up hex strings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.consent_tables import CONSENT

PROCESSING = timedelta(seconds=2)  # arrival to the rows' creation, as the pipeline does it


@dataclass
class Visit:
    site: str
    arrival: datetime
    age: int = 17
    sex: str = "male"
    rule: str = "no_assault_signal"  # the detection's deciding rule
    signal: str | None = None  # e.g. "snomed:425322008" or "text:stabbed": an assault reason
    signal_words: str = "synthetic"  # the reason's description, as detection writes it
    injury: str | None = None
    candidate: bool = False
    nhs_hash: str | None = None
    status: str = "discharged"
    referral_status: str = "new"
    # consent history: (outcome, giver, not-approached reason, minutes after arrival)
    consent: tuple[tuple[str, str | None, str | None, int], ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def assault(
    site: str,
    arrival: datetime,
    *,
    age: int = 17,
    signal: str = "snomed:425322008",
    injury: str = "bladed",
    nhs_hash: str | None = None,
    **kw: object,
) -> Visit:
    """An assault attendance; a candidate when the age is in 11-25."""
    in_band = 11 <= age <= 25
    return Visit(
        site=site,
        arrival=arrival,
        age=age,
        signal=signal,
        injury=injury,
        rule="assault_signal" if in_band else "age_out_of_band",
        candidate=in_band,
        nhs_hash=nhs_hash,
        **kw,
    )  # type: ignore[arg-type]


def write(engine: Engine, visits: Iterable[Visit], *, chunk: int = 5000) -> int:
    written = 0
    batch: list[Visit] = []
    for v in visits:
        batch.append(v)
        if len(batch) >= chunk:
            written += _write(engine, batch)
            batch = []
    if batch:
        written += _write(engine, batch)
    return written


def _write(engine: Engine, visits: list[Visit]) -> int:
    with engine.begin() as conn:
        rows = []
        for v in visits:
            reasons = []
            if v.signal:
                reasons.append({"rule": v.signal, "description": "synthetic", "kind": "assault"})
            if v.rule == "age_out_of_band":
                reasons.insert(0, {"rule": "age_out_of_band", "description": "age", "kind": "gate"})
            rows.append(
                {
                    "site": v.site,
                    "visit_key": uuid.uuid4().hex,
                    "source": "hl7v2",
                    "status": v.status,
                    "arrival_at": v.arrival,
                    "age_at_arrival": v.age,
                    "sex": v.sex,
                    "patient_class": "E",
                    "is_emergency": True,
                    "codings_json": "[]",
                    "flags_json": "[]",
                    "detection_rule": v.rule,
                    "detection_json": json.dumps(
                        {
                            "candidate": v.candidate,
                            "rule": v.rule,
                            "reasons": reasons,
                            "injury_category": v.injury,
                        }
                    ),
                    "nhs_number_hash": v.nhs_hash,
                    "created_at": v.arrival + PROCESSING,
                    "updated_at": v.arrival + PROCESSING,
                }
            )
        ids = []
        for row in rows:  # inserted one by one only to learn the ids of candidates
            if json.loads(row["detection_json"])["candidate"]:
                ids.append(conn.execute(insert(ATTENDANCE).values(row)).inserted_primary_key[0])
        others = [r for r in rows if not json.loads(r["detection_json"])["candidate"]]
        if others:
            conn.execute(insert(ATTENDANCE), others)
        candidates = [v for v in visits if v.candidate]
        referrals = []
        for attendance_id, v in zip(ids, candidates, strict=True):
            reasons = [{"rule": v.signal, "description": v.signal_words, "kind": "assault"}]
            referrals.append(
                {
                    "id": str(uuid.uuid4()),
                    "attendance_id": attendance_id,
                    "site": v.site,
                    "status": v.referral_status,
                    "detection_rule": "assault_signal",
                    "detection_reasons_json": json.dumps(reasons),
                    "injury_category": v.injury,
                    "valueset_version": "synthetic",
                    "created_at": v.arrival + PROCESSING,
                    "updated_at": v.arrival + PROCESSING,
                }
            )
        if referrals:
            conn.execute(insert(REFERRAL), referrals)
        records = []
        for ref, v in zip(referrals, candidates, strict=True):
            for seq, (outcome, giver, reason, minutes) in enumerate(v.consent, start=1):
                records.append(
                    {
                        "referral_id": ref["id"],
                        "seq": seq,
                        "outcome": outcome,
                        "recorded_by": "yw-1",
                        "recorded_at": v.arrival + timedelta(minutes=minutes),
                        "giver": giver,
                        "not_approached_reason": reason,
                        "supersedes": seq - 1 if seq > 1 else None,
                    }
                )
        if records:
            conn.execute(insert(CONSENT), records)
    return len(visits)
