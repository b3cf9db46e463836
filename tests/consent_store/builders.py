"""Builders for the consent store tests: a young person with invented identifiers, an ED
attendance and candidate referral stored the way the pipeline stores them, staff actors, and
consent proposals.

Every identifier is synthetic: the NHS number is in the 999 test range (valid check digit),
the phone number in Ofcom's drama range, the names and places invented.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection, Engine

from consent.keyring import KeyRing
from consent.policy import Actor, Role
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentProposal,
    NotApproachedReason,
)
from referral_gateway.domain.attendance import (
    Attendance,
    AttendanceEvent,
    Coding,
    EdLocation,
    EventKind,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.attendances import REFERRAL, AttendanceStore, referral_row
from referral_gateway.storage.audit_store import AuditAnchor, AuditStore
from referral_gateway.storage.inbox import Arrival, InboxStore

T0 = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)  # a Saturday night in ED
SITE = "RXX01"
OTHER_SITE = "RYY02"

# -- the young person (all invented) -------------------------------------------------------
NHS_NUMBER = "9990001235"
FAMILY_NAME = "Quillfeather"
GIVEN_NAMES = "Zephyrine Odalys"
BIRTH_DATE = date(2009, 7, 23)  # 16 on the night
ADDRESS = "17 Larkspur Mews, Wexcombe, WX9 4QT"
PHONE = "07700900123"
CLINICAL_NOTE = "Stabbed in the thigh outside Wexcombe Lido, says Odalys's cousin"
LOCAL_ID = "MRN-44Z81"
GILLICK_NOTE = "Zephyrine understood the referral and weighed it up with the ED nurse"
NOT_APPROACHED_NOTE = "Quillfeather family asked us to come back tomorrow"
OVERRIDE_REASON = "Zephyrine disclosed ongoing exploitation by an adult at Larkspur Mews"
AUTHORISER = "Dr Imogen Tallowbrook"

# what must never be found in plain text at rest or in a log line
NEEDLES = (
    NHS_NUMBER,
    "999 000 1235",
    FAMILY_NAME,
    "Zephyrine",
    "Odalys",
    "2009-07-23",
    "20090723",
    "Larkspur",
    "Wexcombe",
    "WX9 4QT",
    PHONE,
    LOCAL_ID,
    "Tallowbrook",
)


def identity(**overrides: Any) -> PatientIdentity:
    values: dict[str, Any] = {
        "nhs_number": NHS_NUMBER,
        "local_ids": (LOCAL_ID,),
        "family_name": FAMILY_NAME,
        "given_names": GIVEN_NAMES,
        "birth_date": BIRTH_DATE,
        "address": ADDRESS,
        "phone": PHONE,
    }
    return PatientIdentity(**(values | overrides))


def hl7_arrival(
    control_id: str = "MSG0001",
    *,
    visit_number: str = "V5551",
    received_at: datetime = T0,
    bay: str = "BAY4",
) -> Arrival:
    """An A01 as an ED sends it (v2.4): a 16-year-old with a stab wound, carrying every
    identifier above in PID, and the clinical note in PV2-3's text."""
    pv1 = ["PV1", "1", "E", f"MAJ^{bay}^^RXX01^^^^^Majors"] + [""] * 41
    pv1[19] = f"{visit_number}^^^{SITE}^VN"  # PV1-19 visit number
    pv1[44] = "20260314222500"  # PV1-44 arrival
    segments = [
        f"MSH|^~\\&|EDIS|{SITE}|GATEWAY|YOUTH|20260314223000||ADT^A01|{control_id}|P|2.4",
        "EVN|A01|20260314223000",
        f"PID|1||{NHS_NUMBER}^^^NHS^NH~{LOCAL_ID}^^^{SITE}^MR||{FAMILY_NAME}^Zephyrine^Odalys"
        f"||20090723|F|||17 Larkspur Mews^^Wexcombe^^WX9 4QT||{PHONE}",
        "|".join(pv1),
        f"PV2|||^{CLINICAL_NOTE}",
        "DG1|1||425322008^Stab wound^SCT||20260314222800|W",
    ]
    return Arrival(
        channel="hl7v2",
        sender=f"EDIS^{SITE}",
        message_key=control_id,
        message_type="ADT^A01",
        site=SITE,
        payload="\r".join(segments).encode("utf-8"),
        received_at=received_at,
    )


def arrival_event(visit_number: str = "V5551", **overrides: Any) -> AttendanceEvent:
    values: dict[str, Any] = {
        "kind": EventKind.ARRIVAL,
        "site": SITE,
        "source": Source.HL7V2,
        "visit_number": visit_number,
        "message_type": "ADT^A01",
        "patient": identity(),
        "sex": Sex.FEMALE,
        "patient_class": "E",
        "is_emergency": True,
        "arrival": T0 - timedelta(minutes=5),
        "location": EdLocation("Majors", "Bay 4"),
        "codings": (Coding("snomed", "425322008", "Stab wound"),),
        "free_text": (CLINICAL_NOTE,),
    }
    return AttendanceEvent(**(values | overrides))


@dataclass
class Seeded:
    referral_id: str
    attendance_id: int
    message_id: int


def seed_referral(
    engine: Engine,
    keyring: KeyRing,
    *,
    visit_number: str = "V5551",
    site: str = SITE,
    now: datetime = T0,
    with_message: bool = True,
    **event_overrides: Any,
) -> Seeded:
    """Store the A01 in the inbox, and the attendance and its candidate referral as the
    pipeline would (the decoder and detection are not what these tests are about)."""
    message_id = 0
    if with_message:
        [stored] = InboxStore(engine, keyring).store_batch(
            [hl7_arrival(f"MSG-{visit_number}", visit_number=visit_number, received_at=now)]
        )
        message_id = stored.message_id
    store = AttendanceStore(keyring)
    attendance = Attendance.from_event(arrival_event(visit_number, site=site, **event_overrides))
    with engine.begin() as conn:
        attendance_id = store.save(
            conn,
            store.row_values(
                visit_key=visit_number,
                attendance=attendance,
                age_at_arrival=16,
                detection_rule="coded_assault",
                detection={"candidate": True},
                nhs_number_valid=True,
                message_id=message_id,
                now=now,
            ),
        )
        referral_id = str(uuid.uuid4())
        store.insert_referrals(
            conn,
            [
                referral_row(
                    referral_id=referral_id,
                    attendance_id=attendance_id,
                    site=site,
                    detection_rule="coded_assault",
                    reasons=[{"rule": "coded_assault", "code": "425322008"}],
                    injury_category="bladed",
                    valueset_version="test",
                    now=now,
                )
            ],
        )
    return Seeded(referral_id, attendance_id, message_id)


def set_status(engine: Engine, referral_id: str, status: ReferralStatus, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(REFERRAL)
            .where(REFERRAL.c.id == referral_id)
            .values(status=status.value, updated_at=at)
        )


# -- staff ---------------------------------------------------------------------------------
WORKER = Actor("yw-ash", Role.YOUTH_WORKER, frozenset({SITE}))
OTHER_WORKER = Actor("yw-birch", Role.YOUTH_WORKER, frozenset({SITE}))
LEAD = Actor("tl-cedar", Role.TEAM_LEAD, frozenset({SITE}))
OTHER_SITE_LEAD = Actor("tl-elm", Role.TEAM_LEAD, frozenset({OTHER_SITE}))
PROGRAMME_LEAD = Actor("pl-fir", Role.PROGRAMME_LEAD, frozenset({SITE}))
ADMIN = Actor("admin-gorse", Role.ADMINISTRATOR, frozenset({SITE}))


@dataclass
class Assignments:
    """The casework's answer to "who is assigned to this referral?", as a dict."""

    to: dict[str, str] = field(default_factory=dict)

    def __call__(self, _conn: Connection, referral_id: str) -> str | None:
        return self.to.get(referral_id)


def sharing_for(
    engine: Engine, keyring: KeyRing, anchor: AuditAnchor | None, assignments: Assignments
) -> Sharing:
    return Sharing(engine, keyring, AuditStore(anchor), assignments=assignments)


# -- proposals -----------------------------------------------------------------------------
def proposal(
    referral_id: str, outcome: ConsentOutcome, *, by: Actor = WORKER, **fields: Any
) -> ConsentProposal:
    return ConsentProposal(
        referral_id=referral_id, outcome=outcome, recorded_by=by.user_id, **fields
    )


def given(referral_id: str, *, by: Actor = WORKER, age: int = 16, **fields: Any) -> ConsentProposal:
    fields.setdefault("giver", ConsentGiver.YOUNG_PERSON_16_PLUS)
    return proposal(referral_id, ConsentOutcome.GIVEN, by=by, young_person_age=age, **fields)


def gillick(referral_id: str, *, by: Actor = WORKER, age: int = 14) -> ConsentProposal:
    return given(
        referral_id,
        by=by,
        age=age,
        giver=ConsentGiver.GILLICK_COMPETENT_UNDER_16,
        gillick_assessment=GILLICK_NOTE,
    )


def by_parent(referral_id: str, *, by: Actor = WORKER, age: int = 12) -> ConsentProposal:
    return given(referral_id, by=by, age=age, giver=ConsentGiver.PARENT_GUARDIAN)


def declined(referral_id: str, *, by: Actor = WORKER) -> ConsentProposal:
    return proposal(referral_id, ConsentOutcome.DECLINED, by=by)


def withdrawn(referral_id: str, *, by: Actor = WORKER) -> ConsentProposal:
    return proposal(referral_id, ConsentOutcome.WITHDRAWN, by=by)


def not_approached(
    referral_id: str,
    *,
    by: Actor = WORKER,
    reason: NotApproachedReason = NotApproachedReason.OTHER,
    detail: str | None = NOT_APPROACHED_NOTE,
) -> ConsentProposal:
    return proposal(
        referral_id,
        ConsentOutcome.NOT_APPROACHED,
        by=by,
        not_approached_reason=reason,
        not_approached_detail=detail,
    )


def override(
    referral_id: str,
    *,
    by: Actor = LEAD,
    reason: str | None = OVERRIDE_REASON,
    at: datetime = T0,
) -> ConsentProposal:
    return proposal(
        referral_id,
        ConsentOutcome.SAFEGUARDING_OVERRIDE,
        by=by,
        override_reason=reason,
        authoriser_name=AUTHORISER,
        authoriser_role="Named nurse for safeguarding",
        override_at=at,
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def ticks(start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> Iterator[datetime]:
    t = start
    while True:
        yield t
        t += step
