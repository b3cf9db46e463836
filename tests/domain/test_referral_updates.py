"""What a youth worker must hear about a referral when the ED sends news of its attendance:
the attendance before and after the message, folded with the real `Attendance.apply`."""

from __future__ import annotations

from datetime import timedelta

from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EdLocation,
    EventKind,
    Source,
)
from referral_gateway.domain.referral import (
    ReferralAction,
    ReferralUpdate,
    referral_update,
)
from tests.domain.builders import ARRIVAL, an_attendance


def news(kind: EventKind, **fields: object) -> AttendanceEvent:
    return AttendanceEvent(
        kind=kind, site="RXX", source=Source.HL7V2, visit_number="V0001", **fields
    )  # type: ignore[arg-type]


def heard(kind: EventKind, action: ReferralAction = ReferralAction.NONE, **fields: object):  # type: ignore[no-untyped-def]
    before = an_attendance()
    before = before.apply(news(EventKind.UPDATE, location=EdLocation("MAJORS", "B4")))
    return referral_update(before, before.apply(news(kind, **fields)), action)


def test_an_a03_discharge_is_news():
    assert heard(EventKind.DISCHARGE, discharge=ARRIVAL + timedelta(hours=2)) is (
        ReferralUpdate.DISCHARGED
    )


def test_an_a08_that_brings_a_discharge_time_is_a_discharge_too():
    assert heard(EventKind.UPDATE, discharge=ARRIVAL + timedelta(hours=2)) is (
        ReferralUpdate.DISCHARGED
    )


def test_an_a13_undoing_a_discharge_brings_the_young_person_back():
    discharged = an_attendance().apply(news(EventKind.DISCHARGE, discharge=ARRIVAL))
    back = discharged.apply(news(EventKind.CANCEL_DISCHARGE))
    assert referral_update(discharged, back, ReferralAction.NONE) is (
        ReferralUpdate.BACK_IN_DEPARTMENT
    )


def test_a_cancelled_arrival_is_news_whether_or_not_the_referral_is_voided():
    assert heard(EventKind.CANCEL_ARRIVAL, ReferralAction.VOID) is ReferralUpdate.CANCELLED
    assert heard(EventKind.CANCEL_ARRIVAL) is ReferralUpdate.CANCELLED  # already consented


def test_a_move_to_another_bay_is_news():
    assert heard(EventKind.UPDATE, location=EdLocation(None, "B9")) is ReferralUpdate.MOVED


def test_an_update_that_changes_nothing_on_the_card_is_not():
    assert heard(EventKind.UPDATE, codings=(Coding("snomed", "52684005"),)) is None
    assert heard(EventKind.UPDATE, location=EdLocation("MAJORS", "B4")) is None
