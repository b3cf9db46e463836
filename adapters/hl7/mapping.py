"""HL7 v2 ADT (read with `Er7Message`) to the domain's `AttendanceEvent`.

`to_attendance_event` returns None for messages the gateway does not care about (anything
but ADT A01 A03 A04 A08 A11 A13 A40): the pipeline ACKs them AA and counts them as filtered.
It raises UnmappableMessage when a message we do care about cannot become an event (no site,
or nothing to correlate it by). Data-quality problems that do not stop the mapping become
`flags` ("invalid_nhs_number", "invalid_birth_date", "partial_birth_date",
"invalid_timestamp"), never exceptions.

Where things come from:

    kind            MSH-9.2 (EVN-1 when MSH-9.2 is empty, as some v2.3 senders do)
    site            the configured site, else MSH-4.1
    visit_number    PV1-19.1
    patient         PID-3 (and the v2.3 PID-2) identifiers, PID-5, PID-7, PID-11, PID-13
    sex             PID-8: M F U O A N, or NHS codes 1 2 9 0 X
    patient_class   PV1-2; is_emergency True for "E", False for another class, None if empty
    location        PV1-3: point of care -> area (else .9 description), room/bed -> bay
    arrival         PV1-44      discharge   PV1-45      occurred_at  EVN-2, else MSH-7
    codings         PV2-3, DG1-3, coded OBX values (injury intent, SNOMED/ICD-10/ECDS values)
    free_text       uncoded PV2-3 / DG1 text, OBX chief complaint (LOINC 8661-1 etc.),
                    NTE-3 comments (triage notes sent as notes)
    merged_from     A40: MRG-1, MRG-2, MRG-3, MRG-5, MRG-6 identifiers

The display text of a coded value stays with its Coding and is not copied into free_text, so
a free-text rule cannot fire on, say, the display of a self-harm code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from adapters.hl7.er7 import (
    FACILITY_CODE,
    Er7Message,
    Repetition,
    Segment,
    parse_date,
    parse_timestamp,
)
from adapters.hl7.errors import UnmappableMessage
from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EdLocation,
    EventKind,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.nhs_number import is_valid_nhs_number
from referral_gateway.domain.valuesets import normalise_coding_system

EVENT_KINDS = {
    "A01": EventKind.ARRIVAL,
    "A04": EventKind.ARRIVAL,
    "A08": EventKind.UPDATE,
    "A03": EventKind.DISCHARGE,
    "A11": EventKind.CANCEL_ARRIVAL,
    "A13": EventKind.CANCEL_DISCHARGE,
    "A40": EventKind.MERGE,
}

_SEX = {
    "M": Sex.MALE,
    "F": Sex.FEMALE,
    "O": Sex.OTHER,
    "A": Sex.OTHER,  # ambiguous
    "U": Sex.UNKNOWN,
    "N": Sex.UNKNOWN,  # not applicable
    "1": Sex.MALE,  # NHS Data Dictionary person gender/sex codes
    "2": Sex.FEMALE,
    "9": Sex.OTHER,  # indeterminate
    "0": Sex.UNKNOWN,  # not known
    "X": Sex.UNKNOWN,  # not known (stated gender)
}

NHS_NUMBER_OID = "2.16.840.1.113883.2.1.4.1"
_NHS_AUTHORITIES = frozenset({"NHS", "NHSNBR", "NHS NUMBER", NHS_NUMBER_OID})
_NHS_TYPES = frozenset({"NH", "NHS", "NHSNBR"})

_CLINICAL_SYSTEMS = frozenset({"snomed", "icd10", "ecds"})
_CHIEF_COMPLAINT_CODES = frozenset({"8661-1", "10154-3", "46239-0"})  # LOINC
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})


def to_attendance_event(msg: Er7Message, *, site: str | None = None) -> AttendanceEvent | None:
    """Map an ADT message to an AttendanceEvent, or None when we do not care about it."""
    header = msg.header
    if not header.message_type:
        raise UnmappableMessage("MSH-9 message type is empty", segment="MSH", field=9)
    if header.message_type != "ADT":
        return None
    trigger = header.trigger_event or msg.get("EVN", 1).strip().upper()
    kind = EVENT_KINDS.get(trigger)
    if kind is None:
        return None

    site = (site or msg.get("MSH", 4)).strip()
    if not site:
        raise UnmappableMessage(
            "MSH-4 sending facility is empty and no site is configured", segment="MSH", field=4
        )
    if not FACILITY_CODE.match(site):
        raise UnmappableMessage(
            "MSH-4 sending facility is not a facility code (1-32 letters, digits, '.', '_', '-')",
            segment="MSH",
            field=4,
        )

    flags: list[str] = []
    pid = msg.segment("PID")
    pv1 = msg.segment("PV1")
    patient = _patient(pid, flags) if pid is not None else PatientIdentity()
    visit_number = (pv1.get(19) if pv1 is not None else "").strip() or None
    merged_from: tuple[str, ...] = ()

    if kind is EventKind.MERGE:
        merged_from = _merged_from(msg.segments("MRG"))
        if not merged_from:
            raise UnmappableMessage(
                "A40 merge has no prior identifiers in MRG-1/2/3/5/6", segment="MRG", field=1
            )
        if not patient.nhs_number and not patient.local_ids:
            raise UnmappableMessage(
                "A40 merge has no surviving patient identifier in PID-3", segment="PID", field=3
            )
    elif visit_number is None and not patient.nhs_number and not patient.local_ids:
        raise UnmappableMessage(
            "PV1-19 visit number and PID-3 patient identifiers are both empty",
            segment="PV1",
            field=19,
        )

    codings: list[Coding] = []
    free_text: list[str] = []
    pv2 = msg.segment("PV2")
    if pv2 is not None:
        for repetition in pv2.repetitions(3):
            _coded_value(repetition, codings, free_text)
    for dg1 in msg.segments("DG1"):
        before = len(codings) + len(free_text)
        for repetition in dg1.repetitions(3):
            _coded_value(repetition, codings, free_text)
        if len(codings) + len(free_text) == before:
            _add_text(dg1.text(4), free_text)  # DG1-4 description (deprecated, still sent)
    for obx in msg.segments("OBX"):
        _observation(obx, codings, free_text)
    for nte in msg.segments("NTE"):
        for repetition in nte.repetitions(3):
            _add_text(repetition.text(), free_text)

    patient_class = (pv1.get(2) if pv1 is not None else "").strip().upper() or None
    evn_time = msg.get("EVN", 2)
    return AttendanceEvent(
        kind=kind,
        site=site,
        source=Source.HL7V2,
        visit_number=visit_number,
        message_type=f"ADT^{trigger}",
        occurred_at=_timestamp(evn_time or msg.get("MSH", 7), flags),
        patient=patient,
        sex=_SEX.get(pid.get(8).strip().upper(), Sex.UNKNOWN) if pid is not None else Sex.UNKNOWN,
        patient_class=patient_class,
        is_emergency=None if patient_class is None else patient_class == "E",
        arrival=_timestamp(pv1.get(44), flags) if pv1 is not None else None,
        discharge=_timestamp(pv1.get(45), flags) if pv1 is not None else None,
        location=_location(pv1) if pv1 is not None else EdLocation(),
        codings=tuple(dict.fromkeys(codings)),
        free_text=tuple(free_text),
        merged_from=merged_from,
        flags=tuple(dict.fromkeys(flags)),
    )


def _patient(pid: Segment, flags: list[str]) -> PatientIdentity:
    nhs_number: str | None = None
    local_ids: list[str] = []
    for repetition in [*pid.repetitions(3), *pid.repetitions(2)]:
        value = repetition.get(1).strip()
        if not value:
            continue
        if _is_nhs_number(repetition):
            candidate = "".join(value.split()).replace("-", "")
            if nhs_number is None or (
                not is_valid_nhs_number(nhs_number) and is_valid_nhs_number(candidate)
            ):
                nhs_number = candidate
        elif value not in local_ids:
            local_ids.append(value)
    if nhs_number is not None and not is_valid_nhs_number(nhs_number):
        flags.append("invalid_nhs_number")

    family, given = _name(pid.repetitions(5))
    return PatientIdentity(
        nhs_number=nhs_number,
        local_ids=tuple(local_ids),
        family_name=family,
        given_names=given,
        birth_date=_birth_date(pid.get(7), flags),
        address=_address(pid.repetitions(11)),
        phone=_phone(pid.repetitions(13)),
    )


def _is_nhs_number(identifier: Repetition) -> bool:
    authority = {identifier.get(4, 1).strip().upper(), identifier.get(4, 2).strip().upper()}
    return bool(authority & _NHS_AUTHORITIES) or identifier.get(5).strip().upper() in _NHS_TYPES


def _name(names: Sequence[Repetition]) -> tuple[str | None, str | None]:
    usable = [n for n in names if n.get(1).strip() or n.get(2).strip()]
    if not usable:
        return None, None
    chosen = next((n for n in usable if n.get(7).strip().upper() == "L"), usable[0])
    given = " ".join(part for part in (chosen.get(2).strip(), chosen.get(3).strip()) if part)
    return chosen.get(1).strip() or None, given or None


def _birth_date(value: str, flags: list[str]) -> date | None:
    try:
        born = parse_date(value)
    except ValueError:
        flags.append("invalid_birth_date")
        return None
    if born is None and value.strip():
        flags.append("partial_birth_date")
    return born


def _address(addresses: Sequence[Repetition]) -> str | None:
    for address in addresses:
        parts = [address.get(i).strip() for i in range(1, 7)]
        text = ", ".join(part for part in parts if part)
        if text:
            return text
    return None


def _phone(numbers: Sequence[Repetition]) -> str | None:
    for number in numbers:
        use, equipment = number.get(2).strip().upper(), number.get(3).strip().upper()
        if use == "NET" or equipment in ("INTERNET", "X.400"):
            continue
        text = number.get(1).strip() or number.get(12).strip()
        if not text:
            text = " ".join(p for p in (number.get(i).strip() for i in (5, 6, 7)) if p)
        if text:
            return text
    return None


def _location(pv1: Segment) -> EdLocation:
    area = pv1.get(3, 1).strip() or pv1.get(3, 9).strip() or None
    bay = "/".join(part for part in (pv1.get(3, 2).strip(), pv1.get(3, 3).strip()) if part)
    return EdLocation(area=area, bay=bay or None)


def _timestamp(value: str, flags: list[str]) -> datetime | None:
    try:
        return parse_timestamp(value)
    except ValueError:
        flags.append("invalid_timestamp")
        return None


def _merged_from(mrgs: Iterable[Segment]) -> tuple[str, ...]:
    found: list[str] = []
    for mrg in mrgs:
        for field in (1, 2, 3, 5, 6):
            for repetition in mrg.repetitions(field):
                value = repetition.get(1).strip()
                if value and value not in found:
                    found.append(value)
    return tuple(found)


def _coded_value(value: Repetition, codings: list[Coding], free_text: list[str]) -> bool:
    """CE/CWE: a (code, text, system) triplet, an alternate triplet in 4-6, original text in 9.

    A code with a system becomes a Coding (its text as display); text without a code, or a
    code sent without any system (usually text in the code slot), goes to free_text.
    Returns whether a Coding was added.
    """
    coded = False
    for first in (1, 4):
        code = value.get(first).strip()
        text = value.get(first + 1).strip()
        system = value.get(first + 2).strip()
        if code and system:
            codings.append(Coding(normalise_coding_system(system), code, text))
            coded = True
        elif first == 1:
            for item in (code, text):
                _add_text(item, free_text)
    if not coded:
        _add_text(value.get(9), free_text)
    return coded


def _observation(obx: Segment, codings: list[Coding], free_text: list[str]) -> None:
    value_type = obx.get(2).strip().upper()
    observed = obx.repetitions(3)[:1]
    code = observed[0].get(1).strip().upper() if observed else ""
    label = " ".join(observed[0].get(i) for i in (1, 2, 5)).lower() if observed else ""
    chief_complaint = code in _CHIEF_COMPLAINT_CODES or "complaint" in label
    injury_intent = "intent" in label
    if not (chief_complaint or injury_intent or value_type in _CODED_TYPES):
        return
    for value in obx.repetitions(5):
        if value_type in _CODED_TYPES:
            if chief_complaint or injury_intent:
                _coded_value(value, codings, free_text)
                continue
            system = normalise_coding_system(value.get(3))
            if value.get(1).strip() and system in _CLINICAL_SYSTEMS:
                codings.append(Coding(system, value.get(1).strip(), value.get(2).strip()))
        elif value_type in _TEXT_TYPES or not value_type:
            _add_text(value.text(), free_text)


def _add_text(text: str, free_text: list[str]) -> None:
    text = text.strip()
    if text and text not in free_text:
        free_text.append(text)
