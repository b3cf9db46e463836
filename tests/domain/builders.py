"""Builders for domain tests: synthetic attendances with sensible defaults.

The default attendance is an emergency attendance (PV1-2 "E") at site RXX by a
16-year-old who arrived at 14:30 UTC on Saturday 14 March 2026 (GMT, so London time is
the same), with no assault signal. Tests override only what they are about.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache

from referral_gateway.domain.attendance import (
    Attendance,
    AttendanceStatus,
    Coding,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.sites import SiteRules
from referral_gateway.domain.valuesets import ValueSet, bundled_valuesets

ARRIVAL = datetime(2026, 3, 14, 14, 30, tzinfo=UTC)
SIXTEEN_AT_ARRIVAL = date(2009, 9, 1)  # 16th birthday 1 Sep 2025, 17th on 1 Sep 2026


def an_attendance(
    *,
    site: str = "RXX",
    birth_date: date | None = SIXTEEN_AT_ARRIVAL,
    arrival: datetime | None = ARRIVAL,
    patient_class: str | None = "E",
    is_emergency: bool | None = None,
    status: AttendanceStatus = AttendanceStatus.IN_DEPARTMENT,
    codings: tuple[Coding, ...] = (),
    free_text: tuple[str, ...] = (),
) -> Attendance:
    return Attendance(
        site=site,
        source=Source.HL7V2,
        visit_number="V0001",
        status=status,
        patient=PatientIdentity(
            nhs_number="9990000018",  # synthetic, 999 test range
            family_name="Testpatient",
            given_names="Alex",
            birth_date=birth_date,
        ),
        sex=Sex.UNKNOWN,
        patient_class=patient_class,
        is_emergency=is_emergency,
        arrival=arrival,
        codings=codings,
        free_text=free_text,
    )


def a_site(**overrides: object) -> SiteRules:
    values: dict[str, object] = {"ods_code": "RXX", "name": "Test General ED"}
    values.update(overrides)
    return SiteRules(**values)  # type: ignore[arg-type]


def snomed(code: str, display: str = "") -> Coding:
    return Coding(system="snomed", code=code, display=display)


def icd10(code: str, display: str = "") -> Coding:
    return Coding(system="icd10", code=code, display=display)


def ecds(code: str) -> Coding:
    return Coding(system="ecds", code=code)


@cache
def bundled() -> ValueSet:
    """The latest bundled value set (read once per test run)."""
    return bundled_valuesets().latest
