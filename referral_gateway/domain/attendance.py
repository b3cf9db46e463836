"""What an ED system tells us about an attendance, in one shape whatever the wire format."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

T = TypeVar("T")


class EventKind(enum.StrEnum):
    """What a message says happened to the attendance."""

    ARRIVAL = "arrival"  # HL7 A01/A04, FHIR Encounter created
    UPDATE = "update"  # HL7 A08, FHIR Encounter/Condition/Observation updated
    DISCHARGE = "discharge"  # HL7 A03, FHIR Encounter status finished
    CANCEL_ARRIVAL = "cancel_arrival"  # HL7 A11, FHIR entered-in-error / cancelled
    CANCEL_DISCHARGE = "cancel_discharge"  # HL7 A13
    MERGE = "merge"  # HL7 A40: patient records merged


class Source(enum.StrEnum):
    HL7V2 = "hl7v2"
    FHIR = "fhir"
    MANUAL = "manual"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Coding:
    """A coded reason, diagnosis or injury intent. `system` is a short name:
    'snomed', 'icd10', 'ecds' or whatever the sender used, lower-cased."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """Identifiable details. Never logged, never put in a URL, encrypted at rest."""

    nhs_number: str | None = None
    local_ids: tuple[str, ...] = ()
    family_name: str | None = None
    given_names: str | None = None
    birth_date: date | None = None
    address: str | None = None
    phone: str | None = None

    def __repr__(self) -> str:  # identifiable data never reaches a log line through repr
        return "PatientIdentity(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class EdLocation:
    area: str | None = None  # e.g. "Majors", "Resus", "Paeds ED"
    bay: str | None = None


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    """One message's worth of news about one ED attendance.

    `site` is the ODS code of the sending site (MSH-4 or the FHIR token's site).
    `visit_number` correlates messages about the same attendance (PV1-19 or
    Encounter.identifier). Fields a message does not carry are None/empty, and an
    update only overrides what it carries.
    """

    kind: EventKind
    site: str
    source: Source
    visit_number: str | None
    message_type: str = ""  # e.g. "ADT^A01", "Encounter"
    occurred_at: datetime | None = None  # EVN-2 / meta.lastUpdated
    patient: PatientIdentity = field(default_factory=PatientIdentity)
    sex: Sex = Sex.UNKNOWN
    patient_class: str | None = None  # "E" emergency for HL7; "EMER" for FHIR
    is_emergency: bool | None = None  # None when the message does not say
    arrival: datetime | None = None
    discharge: datetime | None = None
    location: EdLocation = field(default_factory=EdLocation)
    codings: tuple[Coding, ...] = ()
    free_text: tuple[str, ...] = ()  # chief complaint, admit reason text: may be identifiable
    merged_from: tuple[str, ...] = ()  # prior patient/visit ids for MERGE
    flags: tuple[str, ...] = ()  # data-quality notes, e.g. "invalid_nhs_number"

    def __repr__(self) -> str:
        return (
            f"AttendanceEvent(kind={self.kind.value}, site={self.site!r}, "
            f"source={self.source.value}, message_type={self.message_type!r})"
        )


class AttendanceStatus(enum.StrEnum):
    IN_DEPARTMENT = "in_department"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Attendance:
    """What we know about one attendance after every message about it so far.

    Built from the first event and folded forward with `apply`: later messages fill in or
    override what they carry, diagnoses accumulate, A03 discharges, A13 undoes a discharge,
    A11 cancels.
    """

    site: str
    source: Source
    visit_number: str | None
    status: AttendanceStatus = AttendanceStatus.IN_DEPARTMENT
    patient: PatientIdentity = field(default_factory=PatientIdentity)
    sex: Sex = Sex.UNKNOWN
    patient_class: str | None = None
    is_emergency: bool | None = None
    arrival: datetime | None = None
    discharge: datetime | None = None
    location: EdLocation = field(default_factory=EdLocation)
    codings: tuple[Coding, ...] = ()
    free_text: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Attendance(site={self.site!r}, status={self.status.value})"

    @classmethod
    def from_event(cls, event: AttendanceEvent) -> Attendance:
        empty = cls(site=event.site, source=event.source, visit_number=event.visit_number)
        return empty.apply(event)

    def apply(self, event: AttendanceEvent) -> Attendance:
        status = self.status
        discharge = event.discharge or self.discharge
        if event.kind is EventKind.DISCHARGE:
            status = AttendanceStatus.DISCHARGED
        elif event.kind is EventKind.CANCEL_DISCHARGE:
            status, discharge = AttendanceStatus.IN_DEPARTMENT, None
        elif event.kind is EventKind.CANCEL_ARRIVAL:
            status = AttendanceStatus.CANCELLED
        elif event.discharge is not None and status is AttendanceStatus.IN_DEPARTMENT:
            status = AttendanceStatus.DISCHARGED
        return Attendance(
            site=self.site,
            source=self.source,
            visit_number=self.visit_number or event.visit_number,
            status=status,
            patient=_merge_identity(self.patient, event.patient),
            sex=event.sex if event.sex is not Sex.UNKNOWN else self.sex,
            patient_class=event.patient_class or self.patient_class,
            is_emergency=event.is_emergency
            if event.is_emergency is not None
            else self.is_emergency,
            arrival=event.arrival or self.arrival,
            discharge=discharge,
            location=EdLocation(
                area=event.location.area or self.location.area,
                bay=event.location.bay or self.location.bay,
            ),
            codings=_union(self.codings, event.codings),
            free_text=_union(self.free_text, event.free_text),
            flags=_union(self.flags, event.flags),
        )


def _union(old: tuple[T, ...], new: tuple[T, ...]) -> tuple[T, ...]:
    return old + tuple(item for item in new if item not in old)


def _merge_identity(old: PatientIdentity, new: PatientIdentity) -> PatientIdentity:
    return PatientIdentity(
        nhs_number=new.nhs_number or old.nhs_number,
        local_ids=_union(old.local_ids, new.local_ids),
        family_name=new.family_name or old.family_name,
        given_names=new.given_names or old.given_names,
        birth_date=new.birth_date or old.birth_date,
        address=new.address or old.address,
        phone=new.phone or old.phone,
    )
