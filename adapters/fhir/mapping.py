"""FHIR R4 resources (validated JSON) to the gateway's AttendanceEvent.

    AttendanceEvent       from
    kind                  Encounter.status: entered-in-error / cancelled -> CANCEL_ARRIVAL,
                          finished -> DISCHARGE, a finished Encounter reopened ->
                          CANCEL_DISCHARGE, first version -> ARRIVAL, else UPDATE
    site                  the API token's (or configured source's) ODS code, not the payload
    visit_number          Encounter.identifier value (official, then usual, then the first);
                          "Encounter/<id>" when it has none
    patient_class         Encounter.class.code; is_emergency when it (or classHistory) is EMER
    arrival / discharge   Encounter.period.start / .end
    location              Encounter.location: physicalType bd/ro -> bay, others -> area
    codings               Encounter.reasonCode, encounter-diagnosis Conditions (or those
                          listed in Encounter.diagnosis), Observation code/value/components
    free_text             reasonCode.text, Condition.code.text, Condition.note and
                          Observation.note text, Observation text values
    patient               Patient: NHS number (https://fhir.nhs.uk/Id/nhs-number), other
                          identifiers as local ids, name, birthDate, address, phone;
                          Encounter.subject.identifier when the Patient never arrived
    sex                   Patient.gender
    flags                 invalid_nhs_number, missing_birth_date, partial_birth_date,
                          patient_not_found, partial_arrival_time, arrival_without_timezone

Pure functions of plain dicts: the pipeline's decoder looks the related resources up and
hands them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from adapters.fhir.checks import NHS_NUMBER_SYSTEM
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

Json = Mapping[str, Any]
LONDON = ZoneInfo("Europe/London")
CANCELLED_STATUSES = frozenset({"cancelled", "entered-in-error"})
_RETIRED = frozenset({"refuted", "entered-in-error"})
_BAY_TYPES = frozenset({"bd", "ro"})
_SEX = {"male": Sex.MALE, "female": Sex.FEMALE, "other": Sex.OTHER, "unknown": Sex.UNKNOWN}


@dataclass(frozen=True)
class EncounterRecord:
    """An Encounter with what the gateway holds about it."""

    encounter: Json
    patient: Json | None = None
    conditions: Sequence[Json] = ()
    observations: Sequence[Json] = ()

    def __repr__(self) -> str:
        return (
            f"EncounterRecord(conditions={len(self.conditions)}, "
            f"observations={len(self.observations)})"
        )


def encounter_kind(encounter: Json, *, first_version: bool, reopened: bool = False) -> EventKind:
    """What a new version of an Encounter says happened."""
    status = encounter.get("status")
    if status in CANCELLED_STATUSES:
        return EventKind.CANCEL_ARRIVAL
    if status == "finished":
        return EventKind.DISCHARGE
    if reopened:
        return EventKind.CANCEL_DISCHARGE
    return EventKind.ARRIVAL if first_version else EventKind.UPDATE


def reevaluation_kind(encounter: Json) -> EventKind:
    """The kind for an Encounter looked at again because a related resource changed."""
    if encounter.get("status") in CANCELLED_STATUSES:
        return EventKind.CANCEL_ARRIVAL
    return EventKind.UPDATE


def attendance_event(
    record: EncounterRecord,
    *,
    site: str,
    kind: EventKind,
    message_type: str,
    occurred_at: datetime | None = None,
) -> AttendanceEvent:
    enc = record.encounter
    flags: list[str] = []
    klass = _mapping(enc.get("class"))
    class_code = str(klass.get("code") or "").strip() or None
    history = [
        h.get("class", {}).get("code")
        for h in _list(enc.get("classHistory"))
        if isinstance(h.get("class"), Mapping)
    ]
    period = _mapping(enc.get("period"))
    codings: list[Coding] = []
    free_text: list[str] = []
    for reason in _list(enc.get("reasonCode")):
        _concept(reason, codings, free_text)
    diagnosis_ids = {
        ref
        for d in _list(enc.get("diagnosis"))
        if (ref := reference_of(d.get("condition"))) is not None
    }
    for condition in record.conditions:
        if _counts_as_diagnosis(condition, diagnosis_ids):
            _concept(condition.get("code"), codings, free_text)
            _notes(condition, free_text)
    for observation in record.observations:
        _observation(observation, codings, free_text)
    patient, sex = _patient(record.patient, enc.get("subject"), flags)
    return AttendanceEvent(
        kind=kind,
        site=site,
        source=Source.FHIR,
        visit_number=visit_number(enc),
        message_type=message_type,
        occurred_at=occurred_at,
        patient=patient,
        sex=sex,
        patient_class=class_code,
        is_emergency=class_code == "EMER" or "EMER" in history,
        arrival=_instant(period.get("start"), flags, "arrival"),
        discharge=_instant(period.get("end"), [], "discharge"),
        location=_location(enc),
        codings=tuple(dict.fromkeys(codings)),
        free_text=tuple(dict.fromkeys(free_text)),
        flags=tuple(dict.fromkeys(flags)),
    )


def visit_number(encounter: Json) -> str:
    """The Encounter's identifier value: the one a PV1-19 visit number would carry."""
    identifiers = [
        i
        for i in _list(encounter.get("identifier"))
        if str(i.get("value") or "").strip() and i.get("use") not in ("old", "secondary")
    ]
    for use in ("official", "usual"):
        for identifier in identifiers:
            if identifier.get("use") == use:
                return str(identifier["value"]).strip()
    if identifiers:
        return str(identifiers[0]["value"]).strip()
    return f"Encounter/{encounter.get('id')}"


def reference_of(value: Any) -> str | None:
    """ "Type/id" of a literal reference (relative, absolute or versioned); None for
    contained, urn: and logical references."""
    if not isinstance(value, Mapping):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str) or not ref or ref.startswith(("#", "urn:")):
        return None
    parts = ref.split("?", 1)[0].rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def nhs_number_of(patient: Json | None) -> str | None:
    numbers = [
        "".join(str(i.get("value") or "").split()).replace("-", "")
        for i in _list(patient.get("identifier") if patient else None)
        if i.get("system") == NHS_NUMBER_SYSTEM and str(i.get("value") or "").strip()
    ]
    valid = [n for n in numbers if is_valid_nhs_number(n)]
    chosen = valid or numbers
    return chosen[0] if chosen else None


# -- the patient ----------------------------------------------------------------------------
def _patient(patient: Json | None, subject: Any, flags: list[str]) -> tuple[PatientIdentity, Sex]:
    if patient is None:
        flags.append("patient_not_found")
        logical = subject.get("identifier") if isinstance(subject, Mapping) else None
        nhs = None
        if isinstance(logical, Mapping) and logical.get("system") == NHS_NUMBER_SYSTEM:
            nhs = "".join(str(logical.get("value") or "").split()) or None
        if nhs and not is_valid_nhs_number(nhs):
            flags.append("invalid_nhs_number")
        return PatientIdentity(nhs_number=nhs), Sex.UNKNOWN
    nhs_number = nhs_number_of(patient)
    if nhs_number is not None and not is_valid_nhs_number(nhs_number):
        flags.append("invalid_nhs_number")
    local_ids = tuple(
        dict.fromkeys(
            str(i["value"]).strip()
            for i in _list(patient.get("identifier"))
            if i.get("system") != NHS_NUMBER_SYSTEM
            and str(i.get("value") or "").strip()
            and i.get("use") != "old"
        )
    )
    family, given = _name(patient)
    identity = PatientIdentity(
        nhs_number=nhs_number,
        local_ids=local_ids,
        family_name=family,
        given_names=given,
        birth_date=_birth_date(patient.get("birthDate"), flags),
        address=_address(patient),
        phone=_phone(patient),
    )
    return identity, _SEX.get(str(patient.get("gender")), Sex.UNKNOWN)


def _name(patient: Json) -> tuple[str | None, str | None]:
    names = [n for n in _list(patient.get("name")) if n.get("use") not in ("old", "anonymous")]
    if not names:
        return None, None
    chosen = next(
        (n for use in ("official", "usual") for n in names if n.get("use") == use), names[0]
    )
    family = str(chosen.get("family") or "").strip() or None
    given = " ".join(str(g).strip() for g in _list_of_str(chosen.get("given"))).strip() or None
    if family is None and given is None and chosen.get("text"):
        return str(chosen["text"]).strip() or None, None
    return family, given


def _birth_date(value: Any, flags: list[str]) -> date | None:
    if not value:
        flags.append("missing_birth_date")
        return None
    if len(str(value)) != 10:
        flags.append("partial_birth_date")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        flags.append("invalid_birth_date")
        return None


def _address(patient: Json) -> str | None:
    addresses = [
        a
        for a in _list(patient.get("address"))
        if a.get("use") != "old" and not _ended(a.get("period"))
    ]
    addresses.sort(key=lambda a: a.get("use") != "home")
    for address in addresses:
        if address.get("text"):
            return str(address["text"]).strip()
        parts = [*_list_of_str(address.get("line"))]
        parts += [str(address[k]) for k in ("city", "district", "postalCode") if address.get(k)]
        text = ", ".join(p.strip() for p in parts if p.strip())
        if text:
            return text
    return None


def _phone(patient: Json) -> str | None:
    phones = [
        t
        for t in _list(patient.get("telecom"))
        if t.get("system") in ("phone", "sms")
        and str(t.get("value") or "").strip()
        and t.get("use") != "old"
        and not _ended(t.get("period"))
    ]
    order = {"mobile": 0, "home": 1}
    phones.sort(key=lambda t: order.get(str(t.get("use")), 2))
    return str(phones[0]["value"]).strip() if phones else None


def _ended(period: Any) -> bool:
    return isinstance(period, Mapping) and bool(period.get("end"))


# -- the clinical picture -------------------------------------------------------------------
def _counts_as_diagnosis(condition: Json, listed: set[str]) -> bool:
    verification = _codes(condition.get("verificationStatus"))
    if verification & _RETIRED:
        return False
    if f"Condition/{condition.get('id')}" in listed:
        return True
    return any("encounter-diagnosis" in _codes(c) for c in _list(condition.get("category")))


def _observation(observation: Json, codings: list[Coding], free_text: list[str]) -> None:
    if observation.get("status") in ("cancelled", "entered-in-error"):
        return
    _concept(observation.get("code"), codings, [])
    _value(observation, codings, free_text)
    _notes(observation, free_text)
    for component in _list(observation.get("component")):
        _concept(component.get("code"), codings, [])
        _value(component, codings, free_text)


def _value(holder: Json, codings: list[Coding], free_text: list[str]) -> None:
    if isinstance(holder.get("valueCodeableConcept"), Mapping):
        _concept(holder["valueCodeableConcept"], codings, free_text)
    if isinstance(holder.get("valueString"), str) and holder["valueString"].strip():
        free_text.append(holder["valueString"].strip())


def _notes(resource: Json, free_text: list[str]) -> None:
    """Annotation texts (Condition.note, Observation.note): triage notes often arrive here."""
    for note in _list(resource.get("note")):
        text = str(note.get("text") or "").strip()
        if text:
            free_text.append(text)


def _concept(concept: Any, codings: list[Coding], free_text: list[str]) -> None:
    if not isinstance(concept, Mapping):
        return
    for coding in _list(concept.get("coding")):
        code = str(coding.get("code") or "").strip()
        if code:
            codings.append(
                Coding(
                    system=normalise_coding_system(str(coding.get("system") or "")),
                    code=code,
                    display=str(coding.get("display") or "").strip(),
                )
            )
    text = str(concept.get("text") or "").strip()
    if text:
        free_text.append(text)


def _location(encounter: Json) -> EdLocation:
    current = [
        loc
        for loc in _list(encounter.get("location"))
        if loc.get("status") in (None, "active", "planned")
        and isinstance(loc.get("location"), Mapping)
    ]
    area = bay = None
    for loc in current:
        display = str(loc["location"].get("display") or "").strip() or None
        if display is None:
            continue
        if _codes(loc.get("physicalType")) & _BAY_TYPES:
            bay = display
        else:
            area = display
    return EdLocation(area=area, bay=bay)


def _instant(value: Any, flags: list[str], name: str) -> datetime | None:
    """A FHIR dateTime as an aware datetime. A date alone is taken as London midnight."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if len(text) == 10:
        flags.append(f"partial_{name}_time")
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), LONDON)
    if len(text) < 10:
        flags.append(f"partial_{name}_time")
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        flags.append(f"{name}_without_timezone")
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC)


def parse_instant(value: Any) -> datetime | None:
    try:
        return _instant(value, [], "instant")
    except ValueError:
        return None


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, Mapping):
        return set()
    return {str(c.get("code")) for c in _list(concept.get("coding")) if c.get("code")}


def _mapping(value: Any) -> Json:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _list_of_str(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []
