"""Manual referrals: a young person an ED clinician identified that the feed did not catch.

Exploitation concerns (county lines, criminal or sexual exploitation) often come with no
injury code at all, so a clinician asks the youth worker directly. The youth worker records
what they need to approach (site, area and bay, arrival, age or date of birth, sex, concern
category) and whatever identifiable details the clinician gave; the referral joins the queue
like any detected candidate, with "manual" as the rule that made it.

The form is checked here, without a database: an invalid NHS number is flagged, not refused
(as for the feeds), and the young person's age must be known, from the date of birth or as
given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.attendance import (
    Attendance,
    AttendanceEvent,
    EdLocation,
    EventKind,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.casework import CLOCK_SKEW, CaseRefusal
from referral_gateway.domain.detection import age_on
from referral_gateway.domain.nhs_number import normalise_nhs_number
from referral_gateway.domain.sites import SiteRules
from referral_gateway.domain.valuesets import InjuryCategory

MANUAL_RULE = "manual"
MAX_TEXT = 2000
MAX_SHORT = 80
MAX_AGE = 130

CONCERN_LABELS: dict[InjuryCategory, str] = {
    InjuryCategory.EXPLOITATION: "Exploitation concern (criminal or sexual, county lines)",
    InjuryCategory.BLADED: "Knife or sharp object",
    InjuryCategory.FIREARM: "Firearm",
    InjuryCategory.BODY_PART: "Assault with bodily force (punched, kicked)",
    InjuryCategory.SEXUAL: "Sexual assault",
    InjuryCategory.OTHER: "Other assault or violence",
}


@dataclass(frozen=True, slots=True)
class ManualReferral:
    attendance: Attendance
    age_at_arrival: int
    concern: InjuryCategory
    nhs_number_valid: bool | None
    referred_by: str  # the staff user who entered it

    def __repr__(self) -> str:
        return f"ManualReferral(site={self.attendance.site!r}, concern={self.concern.value})"

    def reasons(self) -> list[dict[str, str]]:
        return [
            {
                "rule": MANUAL_RULE,
                "description": f"Referred by ED staff: {CONCERN_LABELS[self.concern].lower()}",
                "kind": "assault",
            }
        ]


def check_manual_referral(
    user: StaffUser,
    fields: Mapping[str, str],
    *,
    arrival: datetime | None,
    birth_date: date | None,
    now: datetime,
    today: date,
) -> ManualReferral | CaseRefusal:
    """The referral the form describes, or what to correct. `fields` holds the form's text
    fields; `arrival` and `birth_date` are already parsed (None when missing or unreadable).
    """
    problems: dict[str, str] = {}
    site = fields.get("site", "").strip().upper()
    if not site:
        problems["site"] = "Choose the site."
    elif not (user.works_queue and user.covers(site)):
        problems["site"] = "Choose one of your sites."
    if arrival is None:
        problems["arrival"] = "Enter when the young person arrived, as a date and time."
    elif arrival > now + CLOCK_SKEW:
        problems["arrival"] = "The arrival time cannot be in the future."
    elif arrival < now - timedelta(days=7):
        problems["arrival"] = "Manual referrals are for attendances in the last 7 days."
    try:
        concern = InjuryCategory(fields.get("concern", ""))
    except ValueError:
        problems["concern"] = "Choose the concern the clinician raised."
        concern = InjuryCategory.OTHER
    try:
        sex = Sex(fields.get("sex", "unknown") or "unknown")
    except ValueError:
        problems["sex"] = "Choose the young person's sex, or 'not known'."
        sex = Sex.UNKNOWN
    age = _age(fields.get("age", ""), birth_date, arrival, today, problems)
    for name in ("ed_area", "bay", "given_names", "family_name", "phone"):
        if len(fields.get(name, "")) > MAX_SHORT:
            problems[name] = f"Keep this under {MAX_SHORT} characters."
    for name in ("concern_detail", "address", "referrer"):
        if len(fields.get(name, "")) > MAX_TEXT:
            problems[name] = f"Keep this under {MAX_TEXT} characters."
    if not fields.get("referrer", "").strip():
        problems["referrer"] = "Enter the name and role of the clinician who raised the concern."
    raw_nhs = fields.get("nhs_number", "").strip()
    nhs = normalise_nhs_number(raw_nhs) if raw_nhs else None
    if raw_nhs and not (raw_nhs.replace(" ", "").replace("-", "").isdigit()):
        problems["nhs_number"] = "An NHS number is 10 digits; leave it empty if you do not know it."
    if problems or arrival is None or age is None:
        return CaseRefusal(problems)
    texts = [f"Concern raised by ED staff ({fields['referrer'].strip()})"]
    if fields.get("concern_detail", "").strip():
        texts.append(fields["concern_detail"].strip())
    flags = ["manual_referral"]
    if raw_nhs and nhs is None:
        flags.append("invalid_nhs_number")
    # the form is one more way in: it speaks the feeds' `AttendanceEvent`, from a manual source
    event = AttendanceEvent(
        kind=EventKind.ARRIVAL,
        site=site,
        source=Source.MANUAL,
        visit_number=None,
        message_type="manual",
        occurred_at=now,
        patient=PatientIdentity(
            nhs_number=nhs or (raw_nhs or None),
            family_name=fields.get("family_name", "").strip() or None,
            given_names=fields.get("given_names", "").strip() or None,
            birth_date=birth_date,
            address=fields.get("address", "").strip() or None,
            phone=fields.get("phone", "").strip() or None,
        ),
        sex=sex,
        is_emergency=True,
        arrival=arrival,
        location=EdLocation(
            area=fields.get("ed_area", "").strip() or None,
            bay=fields.get("bay", "").strip() or None,
        ),
        free_text=tuple(texts),
        flags=tuple(flags),
    )
    return ManualReferral(
        attendance=Attendance.from_event(event),
        age_at_arrival=age,
        concern=concern,
        nhs_number_valid=(nhs is not None) if raw_nhs else None,
        referred_by=user.id,
    )


def _age(
    raw_age: str,
    birth_date: date | None,
    arrival: datetime | None,
    today: date,
    problems: dict[str, str],
) -> int | None:
    on = arrival.date() if arrival is not None else today
    if birth_date is not None:
        if birth_date > on:
            problems["birth_date"] = "The date of birth cannot be after the arrival."
            return None
        age = age_on(birth_date, on)
        if age > MAX_AGE:
            problems["birth_date"] = "Check the date of birth: that age is not plausible."
            return None
        return age
    raw = raw_age.strip()
    if not raw:
        problems["age"] = "Enter the date of birth, or the age in years if that is all you know."
        return None
    if not raw.isdigit() or int(raw) > MAX_AGE:
        problems["age"] = "Enter the age as a whole number of years, like 15."
        return None
    return int(raw)


# a UK number as dialled at home: 0 then 9 or 10 digits (+44 written for the 0)
_UK_PHONE = re.compile(r"^0[1-9]\d{8,9}$")

MANUAL_WARNINGS = {
    "age": "The age is outside this site's band ({band}): check it, or go on if the clinician "
    "still asks for the youth worker.",
    "nhs_number": "The NHS number's check digit is wrong: check it against the ED record. It is "
    "kept, flagged as not valid.",
    "phone": "The phone number does not look like a UK number (11 digits starting 0, or +44): "
    "check it.",
}


def unlikely_uk_phone(raw: str) -> bool:
    """A number no UK phone dials: after spaces, dashes and brackets, not 0 and 9 or 10
    digits (or +44 for the 0)."""
    digits = re.sub(r"[\s\-().]", "", raw)
    if digits.startswith("+44"):
        digits = "0" + digits[3:].removeprefix("0")
    return not _UK_PHONE.match(digits)


def manual_warnings(manual: ManualReferral, rules: SiteRules) -> dict[str, str]:
    """What is unusual about a manual referral but does not stop it: field -> message. The
    youth worker confirms and it is saved as entered (an invalid NHS number flagged)."""
    found: dict[str, str] = {}
    if not rules.age_in_band(manual.age_at_arrival):
        found["age"] = MANUAL_WARNINGS["age"].format(band=f"{rules.min_age} to {rules.max_age}")
    if manual.nhs_number_valid is False:
        found["nhs_number"] = MANUAL_WARNINGS["nhs_number"]
    phone = manual.attendance.patient.phone
    if phone and unlikely_uk_phone(phone):
        found["phone"] = MANUAL_WARNINGS["phone"]
    return found
