"""Consent histories in the database: every record a new row, never overwritten.

The structured fields of a record (outcome, who recorded it and when, giver, age, reason
code, authoriser's role) are plain columns: `decide` and the reports need them. The free text
a record keeps (Gillick assessment, not-approached detail, override reason, authoriser's
name) is one encrypted JSON value, read only by callers the policy allowed to see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from consent.keyring import KeyRing
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentRecord,
    NotApproachedReason,
    check_history,
)
from referral_gateway.storage.consent_tables import CONSENT

DETAILS_CONTEXT = "consent_record.details"
_FREE_TEXT = ("gillick_assessment", "not_approached_detail", "override_reason", "authoriser_name")


class ConsentStore:
    """Reads and appends consent records inside a caller's transaction."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def append(self, conn: Connection, record: ConsentRecord) -> None:
        """Store `record`, which must follow the stored history (`record_consent` made it).
        A concurrent append of the same seq fails on the unique (referral_id, seq)."""
        details = {name: getattr(record, name) for name in _FREE_TEXT}
        token = None
        if any(v is not None for v in details.values()):
            token = self.keyring.encrypt_text(json.dumps(details), context=DETAILS_CONTEXT)
        conn.execute(
            insert(CONSENT).values(
                referral_id=record.referral_id,
                seq=record.seq,
                outcome=record.outcome.value,
                recorded_by=record.recorded_by,
                recorded_at=record.recorded_at,
                giver=record.giver.value if record.giver else None,
                young_person_age=record.young_person_age,
                not_approached_reason=(
                    record.not_approached_reason.value if record.not_approached_reason else None
                ),
                authoriser_role=record.authoriser_role,
                override_at=record.override_at,
                supersedes=record.supersedes,
                onward_sharing=record.onward_sharing,
                details_enc=token,
                key_id=KeyRing.key_id_of(token) if token is not None else None,
            )
        )

    def history(
        self, conn: Connection, referral_id: str, *, with_details: bool = False
    ) -> tuple[ConsentRecord, ...]:
        """The referral's records in order. Free text only `with_details` (decrypted)."""
        rows = conn.execute(
            select(CONSENT).where(CONSENT.c.referral_id == referral_id).order_by(CONSENT.c.seq)
        ).all()
        records = tuple(self._record(r._mapping, with_details) for r in rows)
        check_history(records, referral_id=referral_id)
        return records

    def histories(
        self, conn: Connection, referral_ids: Iterable[str]
    ) -> dict[str, tuple[ConsentRecord, ...]]:
        """Histories of many referrals (no free text), for the queue: one query."""
        ids = list(dict.fromkeys(referral_ids))
        found: dict[str, list[ConsentRecord]] = {rid: [] for rid in ids}
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(CONSENT)
                .where(CONSENT.c.referral_id.in_(ids[start : start + 500]))
                .order_by(CONSENT.c.referral_id, CONSENT.c.seq)
            ).all()
            for r in rows:
                found[r.referral_id].append(self._record(r._mapping, False))
        result = {rid: tuple(records) for rid, records in found.items()}
        for rid, records in result.items():
            check_history(records, referral_id=rid)
        return result

    def erase_details(self, conn: Connection, referral_id: str, *, now: datetime) -> int:
        """Erase the free text of a referral's records (retention). Returns rows changed."""
        n = conn.execute(
            update(CONSENT)
            .where(CONSENT.c.referral_id == referral_id, CONSENT.c.details_enc.is_not(None))
            .values(details_enc=None, key_id=None, details_erased_at=now)
        ).rowcount
        return int(n or 0)

    def _record(self, row: RowMapping, with_details: bool) -> ConsentRecord:
        details: dict[str, str | None] = {}
        if with_details and row["details_enc"] is not None:
            details = json.loads(
                self.keyring.decrypt_text(row["details_enc"], context=DETAILS_CONTEXT)
            )
        return ConsentRecord(
            referral_id=row["referral_id"],
            seq=row["seq"],
            outcome=ConsentOutcome(row["outcome"]),
            recorded_by=row["recorded_by"],
            recorded_at=row["recorded_at"],
            giver=ConsentGiver(row["giver"]) if row["giver"] else None,
            young_person_age=row["young_person_age"],
            gillick_assessment=details.get("gillick_assessment"),
            not_approached_reason=(
                NotApproachedReason(row["not_approached_reason"])
                if row["not_approached_reason"]
                else None
            ),
            not_approached_detail=details.get("not_approached_detail"),
            override_reason=details.get("override_reason"),
            authoriser_name=details.get("authoriser_name"),
            authoriser_role=row["authoriser_role"],
            override_at=row["override_at"],
            supersedes=row["supersedes"],
            onward_sharing=bool(row["onward_sharing"]),
        )
