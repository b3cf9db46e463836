"""Attendances and referrals in the database, identifiable parts encrypted."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from consent.keyring import KeyRing
from referral_gateway.domain.attendance import (
    Attendance,
    AttendanceStatus,
    Coding,
    EdLocation,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.tables import AttendanceRow, ReferralRow

IDENTITY_CONTEXT = "attendance.identity"
ATTENDANCE: Table = AttendanceRow.__table__  # type: ignore[attr-defined]
REFERRAL: Table = ReferralRow.__table__  # type: ignore[attr-defined]


# Statements built once: building them per message cost more than running them.
_LOAD = (
    select(ATTENDANCE, REFERRAL.c.id.label("rid"), REFERRAL.c.status.label("rstatus"))
    .select_from(ATTENDANCE.outerjoin(REFERRAL, REFERRAL.c.attendance_id == ATTENDANCE.c.id))
    .where(ATTENDANCE.c.site == bindparam("site"), ATTENDANCE.c.visit_key == bindparam("visit_key"))
)
_SAVED_COLUMNS = [c.name for c in ATTENDANCE.columns if c.name not in {"id", "created_at"}]
_INSERT = (
    insert(ATTENDANCE)
    .values({name: bindparam(name) for name in [*_SAVED_COLUMNS, "created_at"]})
    .returning(ATTENDANCE.c.id)
)
_UPDATE = (
    update(ATTENDANCE)
    .where(ATTENDANCE.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _SAVED_COLUMNS})
)


@dataclass(frozen=True)
class StoredAttendance:
    id: int
    attendance: Attendance
    referral_id: str | None
    referral_status: ReferralStatus | None


class AttendanceStore:
    """Reads and writes attendances inside a caller's transaction."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def load(self, conn: Connection, site: str, visit_key: str) -> StoredAttendance | None:
        row = conn.execute(_LOAD, {"site": site, "visit_key": visit_key}).first()
        if row is None:
            return None
        return StoredAttendance(
            id=row.id,
            attendance=self._to_domain(row._mapping),
            referral_id=row.rid,
            referral_status=ReferralStatus(row.rstatus) if row.rstatus else None,
        )

    def save(
        self,
        conn: Connection,
        *,
        existing_id: int | None,
        visit_key: str,
        attendance: Attendance,
        age_at_arrival: int | None,
        detection_rule: str,
        detection: dict[str, Any],
        nhs_number_valid: bool | None,
        message_id: int | None,  # None: entered by hand (a manual referral)
        now: datetime,
    ) -> int:
        identity = _identity_json(attendance)
        values: dict[str, Any] = {
            "site": attendance.site,
            "visit_key": visit_key,
            "source": attendance.source.value,
            "status": attendance.status.value,
            "arrival_at": attendance.arrival,
            "discharge_at": attendance.discharge,
            "age_at_arrival": age_at_arrival,
            "sex": attendance.sex.value,
            "patient_class": attendance.patient_class,
            "is_emergency": attendance.is_emergency,
            "ed_area": attendance.location.area,
            "bay": attendance.location.bay,
            "codings_json": json.dumps([[c.system, c.code, c.display] for c in attendance.codings]),
            "flags_json": json.dumps(list(attendance.flags)),
            "detection_rule": detection_rule,
            "detection_json": json.dumps(detection),
            "identity_enc": self.keyring.encrypt_text(identity, context=IDENTITY_CONTEXT),
            "key_id": self.keyring.active_key_id,
            "nhs_number_hash": self.nhs_hash(attendance.patient.nhs_number),
            "nhs_number_valid": nhs_number_valid,
            "patient_key_hash": self.patient_hash(attendance),
            "birth_year": attendance.patient.birth_date.year
            if attendance.patient.birth_date
            else None,
            "updated_at": now,
            "last_message_id": message_id,
        }
        if existing_id is None:
            values["created_at"] = now
            return int(conn.execute(_INSERT, values).scalar_one())
        values["_id"] = existing_id
        conn.execute(_UPDATE, values)
        return existing_id

    def nhs_hash(self, nhs_number: str | None) -> str | None:
        if not nhs_number:
            return None
        return self.keyring.blind_index(nhs_number, purpose="nhs_number")

    def patient_hash(self, attendance: Attendance) -> str | None:
        return (
            self.local_id_hash(attendance.site, attendance.patient.local_ids[0])
            if (attendance.patient.local_ids)
            else None
        )

    def local_id_hash(self, site: str, local_id: str) -> str:
        return self.keyring.blind_index(f"{site}|{local_id}", purpose="local_patient_id")

    def attendances_of_patient(self, conn: Connection, site: str, local_id: str) -> list[int]:
        rows = conn.execute(
            select(ATTENDANCE.c.id).where(
                ATTENDANCE.c.site == site,
                ATTENDANCE.c.patient_key_hash == self.local_id_hash(site, local_id),
            )
        ).all()
        return [r.id for r in rows]

    def load_by_id(self, conn: Connection, attendance_id: int) -> tuple[str, Attendance]:
        row = conn.execute(select(ATTENDANCE).where(ATTENDANCE.c.id == attendance_id)).one()
        return row.visit_key, self._to_domain(row._mapping)

    def create_referral(
        self,
        conn: Connection,
        *,
        attendance_id: int,
        site: str,
        detection_rule: str,
        reasons: list[dict[str, str]],
        injury_category: str | None,
        valueset_version: str,
        now: datetime,
    ) -> str:
        referral_id = str(uuid.uuid4())
        conn.execute(
            insert(REFERRAL).values(
                id=referral_id,
                attendance_id=attendance_id,
                site=site,
                status=ReferralStatus.NEW.value,
                detection_rule=detection_rule,
                detection_reasons_json=json.dumps(reasons),
                injury_category=injury_category,
                valueset_version=valueset_version,
                created_at=now,
                updated_at=now,
            )
        )
        return referral_id

    def void_referral(self, conn: Connection, referral_id: str, reason: str, now: datetime) -> None:
        conn.execute(
            update(REFERRAL)
            .where(REFERRAL.c.id == referral_id)
            .values(status=ReferralStatus.VOIDED.value, voided_reason=reason, updated_at=now)
        )

    def _to_domain(self, row: Any) -> Attendance:
        ident: dict[str, Any] = {}
        if row["identity_enc"] is not None:
            ident = json.loads(
                self.keyring.decrypt_text(row["identity_enc"], context=IDENTITY_CONTEXT)
            )
        patient = PatientIdentity(
            nhs_number=ident.get("nhs_number"),
            local_ids=tuple(ident.get("local_ids", ())),
            family_name=ident.get("family_name"),
            given_names=ident.get("given_names"),
            birth_date=date.fromisoformat(ident["birth_date"]) if ident.get("birth_date") else None,
            address=ident.get("address"),
            phone=ident.get("phone"),
        )
        return Attendance(
            site=row["site"],
            source=Source(row["source"]),
            visit_number=ident.get("visit_number"),
            status=AttendanceStatus(row["status"]),
            patient=patient,
            sex=Sex(row["sex"]),
            patient_class=row["patient_class"],
            is_emergency=row["is_emergency"],
            arrival=row["arrival_at"],
            discharge=row["discharge_at"],
            location=EdLocation(area=row["ed_area"], bay=row["bay"]),
            codings=tuple(Coding(*c) for c in json.loads(row["codings_json"])),
            free_text=tuple(ident.get("free_text", ())),
            flags=tuple(json.loads(row["flags_json"])),
        )


def _identity_json(a: Attendance) -> str:
    p = a.patient
    return json.dumps(
        {
            "nhs_number": p.nhs_number,
            "local_ids": list(p.local_ids),
            "family_name": p.family_name,
            "given_names": p.given_names,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "address": p.address,
            "phone": p.phone,
            "free_text": list(a.free_text),
            "visit_number": a.visit_number,
        }
    )
