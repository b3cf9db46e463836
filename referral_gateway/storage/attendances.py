"""Attendances and referrals in the database, identifiable parts encrypted.

Encrypted with the key ring: the identity (name, NHS number, birth date, address, phone,
free text, the visit number) and the bay. The visit key an attendance is found by (PV1-19,
Encounter.identifier, or a stand-in when the message has none) is stored only as a blind
index (a keyed hash of site and key), like the NHS number and local patient ids."""

from __future__ import annotations

import json
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
BAY_CONTEXT = "attendance.bay"
VISIT_PURPOSE = "visit_number"
ATTENDANCE: Table = AttendanceRow.__table__  # type: ignore[attr-defined]
REFERRAL: Table = ReferralRow.__table__  # type: ignore[attr-defined]


# Statements built once: building them per message cost more than running them.
_READ = select(
    ATTENDANCE,
    REFERRAL.c.id.label("rid"),
    REFERRAL.c.status.label("rstatus"),
    REFERRAL.c.updated_at.label("rupdated"),
).select_from(ATTENDANCE.outerjoin(REFERRAL, REFERRAL.c.attendance_id == ATTENDANCE.c.id))
_BY_VISIT = _READ.where(
    ATTENDANCE.c.site.in_(bindparam("sites", expanding=True)),
    ATTENDANCE.c.visit_key.in_(bindparam("visit_keys", expanding=True)),
)
_BY_PATIENT = _READ.where(
    ATTENDANCE.c.site.in_(bindparam("sites", expanding=True)),
    ATTENDANCE.c.patient_key_hash.in_(bindparam("hashes", expanding=True)),
)
_SAVED_COLUMNS = [c.name for c in ATTENDANCE.columns if c.name not in {"id", "created_at"}]
_INSERT = insert(ATTENDANCE).returning(ATTENDANCE.c.id, sort_by_parameter_order=True)
_UPDATE = (
    update(ATTENDANCE)
    .where(ATTENDANCE.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _SAVED_COLUMNS})
)
_INSERT_REFERRAL = insert(REFERRAL)
_VOID = (
    update(REFERRAL)
    .where(REFERRAL.c.id == bindparam("_id"))
    .values(
        status=ReferralStatus.VOIDED.value,
        voided_reason=bindparam("reason"),
        updated_at=bindparam("now"),
    )
)

VisitKey = tuple[str, str]
"""(site, visit key): an attendance's identity. The visit key is the plain visit number (or
stand-in), or a `VisitIndex` for a stored attendance found another way."""


class VisitIndex(str):
    """A visit key already in its stored form (the blind index), for an attendance found by
    its patient (a merge), whose plain visit key is not at hand. Only storage makes these:
    no visit number from a message can pass for one."""

    __slots__ = ()


@dataclass(frozen=True)
class StoredAttendance:
    id: int
    attendance: Attendance
    referral_id: str | None
    referral_status: ReferralStatus | None


@dataclass(frozen=True)
class Snapshot:
    """The stored attendances (and their referrals) asked for, as read at one moment:
    those with the given visit keys, and those of the given patients (site, local id)."""

    visits: frozenset[tuple[str, str]]  # (site, visit index)
    patients: frozenset[tuple[str, str]]  # (site, local id hash)
    found: dict[VisitKey, StoredAttendance]
    versions: dict[tuple[str, str], tuple[Any, ...]]  # by (site, visit index): `unchanged`


class AttendanceStore:
    """Reads and writes attendances inside a caller's transaction."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def snapshot(
        self,
        conn: Connection,
        visits: set[VisitKey] | frozenset[VisitKey],
        patients: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    ) -> Snapshot:
        """Read the attendances with these (site, visit key)s and those of these
        (site, local patient id)s, decrypted, in one or two queries."""
        hashes = frozenset((site, self.local_id_hash(site, local)) for site, local in patients)
        asked = {(site, self.visit_index(site, key)): (site, key) for site, key in visits}
        found: dict[VisitKey, StoredAttendance] = {}
        versions: dict[VisitKey, tuple[Any, ...]] = {}
        for row in self._rows(conn, frozenset(asked), hashes):
            stored = (row.site, row.visit_key)
            versions[stored] = _version(row)
            key = asked.get(stored) or (row.site, VisitIndex(row.visit_key))
            found[key] = StoredAttendance(
                id=row.id,
                attendance=self._to_domain(row._mapping),
                referral_id=row.rid,
                referral_status=ReferralStatus(row.rstatus) if row.rstatus else None,
            )
        return Snapshot(frozenset(asked), hashes, found, versions)

    def unchanged(self, conn: Connection, snapshot: Snapshot) -> bool:
        """Whether every attendance and referral in `snapshot` is still as it was read, and
        no attendance it asked for has appeared since (no decryption: versions only)."""
        now = {
            (row.site, row.visit_key): _version(row)
            for row in self._rows(conn, snapshot.visits, snapshot.patients)
        }
        return now == snapshot.versions

    def _rows(
        self, conn: Connection, visits: frozenset[VisitKey], hashes: frozenset[tuple[str, str]]
    ) -> list[Any]:
        """Rows whose (site, visit key) is in `visits` or (site, patient hash) in `hashes`:
        one query each, by sites and keys, the exact pairs picked out here."""
        rows: list[Any] = []
        for statement, param, column, pairs in (
            (_BY_VISIT, "visit_keys", "visit_key", visits),
            (_BY_PATIENT, "hashes", "patient_key_hash", hashes),
        ):
            if pairs:
                found = conn.execute(
                    statement,
                    {"sites": sorted({s for s, _ in pairs}), param: sorted({k for _, k in pairs})},
                )
                rows.extend(r for r in found if (r.site, r._mapping[column]) in pairs)
        return rows

    def row_values(
        self,
        *,
        visit_key: str,
        attendance: Attendance,
        age_at_arrival: int | None,
        detection_rule: str,
        detection: dict[str, Any],
        nhs_number_valid: bool | None,
        message_id: int | None,  # None: entered by hand (a manual referral)
        now: datetime,
    ) -> dict[str, Any]:
        """An attendance as the columns of its row, identifiable parts encrypted."""
        return {
            "site": attendance.site,
            "visit_key": self.visit_index(attendance.site, visit_key),
            "source": attendance.source.value,
            "status": attendance.status.value,
            "arrival_at": attendance.arrival,
            "discharge_at": attendance.discharge,
            "age_at_arrival": age_at_arrival,
            "sex": attendance.sex.value,
            "patient_class": attendance.patient_class,
            "is_emergency": attendance.is_emergency,
            "ed_area": attendance.location.area,
            "bay_enc": self.keyring.encrypt_text(attendance.location.bay, context=BAY_CONTEXT)
            if attendance.location.bay
            else None,
            "codings_json": json.dumps([[c.system, c.code, c.display] for c in attendance.codings]),
            "flags_json": json.dumps(list(attendance.flags)),
            "detection_rule": detection_rule,
            "detection_json": json.dumps(detection),
            "identity_enc": self.keyring.encrypt_text(
                _identity_json(attendance), context=IDENTITY_CONTEXT
            ),
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

    def save(
        self, conn: Connection, values: dict[str, Any], *, existing_id: int | None = None
    ) -> int:
        """Insert or update one attendance (`values` from `row_values`); returns its id."""
        if existing_id is None:
            [new_id] = self.insert_rows(conn, [values], values["updated_at"])
            return new_id
        self.update_rows(conn, [(existing_id, values)])
        return existing_id

    @staticmethod
    def insert_rows(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> list[int]:
        """Insert attendance rows (from `row_values`); returns their ids, in order."""
        if not rows:
            return []
        params = [{**row, "created_at": now} for row in rows]
        return [int(i) for i in conn.execute(_INSERT, params).scalars().all()]

    @staticmethod
    def update_rows(conn: Connection, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Overwrite attendance rows: (id, `row_values`) pairs."""
        if rows:
            conn.execute(_UPDATE, [{**values, "_id": row_id} for row_id, values in rows])

    def visit_index(self, site: str, visit_key: str) -> str:
        """What the `visit_key` column holds for this site's visit key."""
        if isinstance(visit_key, VisitIndex):
            return str(visit_key)
        return self.keyring.blind_index(f"{site}|{visit_key}", purpose=VISIT_PURPOSE)

    def bay(self, bay_enc: bytes | None) -> str | None:
        return self.keyring.decrypt_text(bay_enc, context=BAY_CONTEXT) if bay_enc else None

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

    @staticmethod
    def insert_referrals(conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert new referral rows (from `referral_row`)."""
        if rows:
            conn.execute(_INSERT_REFERRAL, rows)

    @staticmethod
    def void_referrals(conn: Connection, voids: list[tuple[str, str]], now: datetime) -> None:
        """Void referrals: (referral id, reason) pairs."""
        if voids:
            conn.execute(_VOID, [{"_id": rid, "reason": why, "now": now} for rid, why in voids])

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
            location=EdLocation(area=row["ed_area"], bay=self.bay(row["bay_enc"])),
            codings=tuple(Coding(*c) for c in json.loads(row["codings_json"])),
            free_text=tuple(ident.get("free_text", ())),
            flags=tuple(json.loads(row["flags_json"])),
        )


def referral_row(
    *,
    referral_id: str,
    attendance_id: int,
    site: str,
    detection_rule: str,
    reasons: list[dict[str, str]],
    injury_category: str | None,
    valueset_version: str,
    now: datetime,
) -> dict[str, Any]:
    """A new candidate referral as the columns of its row."""
    return {
        "id": referral_id,
        "attendance_id": attendance_id,
        "site": site,
        "status": ReferralStatus.NEW.value,
        "detection_rule": detection_rule,
        "detection_reasons_json": json.dumps(reasons),
        "injury_category": injury_category,
        "valueset_version": valueset_version,
        "created_at": now,
        "updated_at": now,
    }


def _version(row: Any) -> tuple[Any, ...]:
    """What changes whenever anything rewrites an attendance or its referral."""
    return (
        row.id,
        row.updated_at,
        row.last_message_id,
        row.key_id,
        row.identity_enc,
        row.bay_enc,
        row.rid,
        row.rstatus,
        row.rupdated,
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


def sites_seen(conn: Connection) -> frozenset[str]:
    """Every site an attendance has come from (by feed or by hand)."""
    return frozenset(r[0] for r in conn.execute(select(ATTENDANCE.c.site).distinct()))
