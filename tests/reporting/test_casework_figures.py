"""The casework figures of a month's report, read from a database that the real services
wrote: arrivals through the pipeline (a fake ED, the real inbox and detection), the
approach and everything after it through `services.casework.Casework` as the web queue
calls it. Every expected figure below is counted by hand from the story in the test.

Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from consent.policy import Role
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentProposal,
    ConsentRecord,
    NotApproachedReason,
)
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.attendance import Sex
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.services.casework import Casework
from referral_gateway.services.reporting import ReportService
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import assigned_to
from referral_gateway.storage.report_facts import SqlFacts
from tests.conftest import FixedClock
from tests.web.builders import FAST_HASHER, SITE_A, FakeEd, Patient, add_account

OCTOBER_2025 = ReportMonth(2025, 10)


class Programme:
    """One site's ED and youth work team, on a clock the test moves forward."""

    def __init__(self, engine, keyring, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        accounts = AccountStore(engine, hasher=FAST_HASHER)
        self.casework = Casework(
            engine,
            keyring,
            clock,
            accounts=accounts,
            sharing=Sharing(engine, keyring, AuditStore(), assignments=assigned_to),
            publish=lambda _event: None,
            local_zone=ZoneInfo("Europe/London"),
        )
        self.ed = FakeEd(engine, keyring, clock)
        self.ash = add_account(accounts, "ash", Role.YOUTH_WORKER, now=clock())
        self.lead = add_account(accounts, "lead", Role.TEAM_LEAD, now=clock())
        self.facts = SqlFacts(engine)
        self._nhs = iter(["9990000026", "9990001235", "9990002231", "9990003238"] * 3)

    def at(self, moment: str) -> datetime:
        self.clock.now = datetime.fromisoformat(moment).astimezone(UTC)
        return self.clock.now

    def arrives(self, moment: str, *, age: int = 17, sex: Sex = Sex.MALE) -> str:
        arrival = self.at(moment)
        patient = Patient(age=age, sex=sex, nhs_number=next(self._nhs))
        return self.ed.stab_wound(patient=patient, arrival=arrival)

    def consent(
        self, rid: str, outcome: ConsentOutcome, *, by: StaffUser | None = None, **fields: object
    ) -> None:
        worker = by or self.ash
        proposal = ConsentProposal(rid, outcome, recorded_by=worker.id, **fields)  # type: ignore[arg-type]
        result = self.casework.record_consent(worker, rid, proposal)
        assert isinstance(result, ConsentRecord), result

    def given(self, rid: str, age: int, giver: ConsentGiver) -> None:
        self.consent(rid, ConsentOutcome.GIVEN, giver=giver, young_person_age=age)

    def contact(self, rid: str, at: str, method: str, outcome: str) -> None:
        when = datetime.fromisoformat(at).astimezone(UTC)
        assert (
            self.casework.log_contact(self.ash, rid, at=when, method=method, outcome=outcome)
            is None
        )

    def onward(self, rid: str, kind: str, service: str) -> None:
        today = self.casework.today()
        done = self.casework.add_onward(self.ash, rid, kind=kind, service_type=service, on=today)
        assert done is None

    def support(self, rid: str) -> None:
        done = self.casework.set_support(
            self.ash, rid, tier="short", start_on=self.casework.today()
        )
        assert done is None

    def close(self, rid: str, outcome: str) -> None:
        assert self.casework.close(self.ash, rid, outcome=outcome) is None

    def follow_up(self, rid: str) -> None:
        done = self.casework.record_follow_up(self.ash, rid, outcome="reached_no_further_need")
        assert done is None


@pytest.fixture
def programme(engine, keyring) -> Programme:
    return Programme(engine, keyring, FixedClock(datetime(2024, 9, 15, 20, 0, tzinfo=UTC)))


def test_a_months_casework_is_counted_from_what_the_youth_workers_recorded(programme):
    p = programme
    # P0 arrived in September 2024, more than a year before the report's cohort: consent,
    # contact, closed in April 2025, its 6-month follow-up done in October 2025
    p0 = p.arrives("2024-09-15T21:00+01:00", age=18)
    p.at("2024-09-15T21:40+01:00")
    p.given(p0, 18, ConsentGiver.YOUNG_PERSON_16_PLUS)
    p.contact(p0, "2024-09-15T21:30+01:00", "face_to_face", "engaged")
    p.at("2025-04-10T12:00+01:00")
    p.close(p0, "support_completed")  # follow-up due 10 October 2025

    # P1, 16: phoned first with no answer, then spoken to face to face (engaged) at 20
    # minutes; consent recorded after the conversation; short support, one onward
    # referral (mental health) and one signposting; closed as referred on in October
    p1 = p.arrives("2025-10-03T21:00+01:00", age=16)
    p.at("2025-10-03T21:50+01:00")
    p.given(p1, 16, ConsentGiver.YOUNG_PERSON_16_PLUS)
    p.contact(p1, "2025-10-03T21:05+01:00", "phone", "no_answer")
    p.contact(p1, "2025-10-03T21:20+01:00", "face_to_face", "engaged")
    p.support(p1)
    p.onward(p1, "referral", "mental_health")
    p.onward(p1, "signpost", "youth_services")

    # P2, 19, female: consent recorded 60 minutes after arrival; then by phone: no answer,
    # then spoke but did not engage; closed as disengaged
    p2 = p.arrives("2025-10-04T10:00+01:00", age=19, sex=Sex.FEMALE)
    p.at("2025-10-04T11:00+01:00")
    p.given(p2, 19, ConsentGiver.YOUNG_PERSON_16_PLUS)
    p.at("2025-10-07T10:00+01:00")
    p.contact(p2, "2025-10-06T10:00+01:00", "phone", "no_answer")
    p.contact(p2, "2025-10-07T09:30+01:00", "phone", "spoke_not_engaged")

    # P3, 14: declined at 30 minutes; closed as declined
    p3 = p.arrives("2025-10-05T18:00+01:00", age=14)
    p.at("2025-10-05T18:30+01:00")
    p.consent(p3, ConsentOutcome.DECLINED)

    # P4: discharged before anyone could approach
    p4 = p.arrives("2025-10-06T02:00+01:00")
    p.at("2025-10-06T05:00+01:00")
    p.consent(
        p4,
        ConsentOutcome.NOT_APPROACHED,
        not_approached_reason=NotApproachedReason.DISCHARGED_BEFORE_APPROACH,
    )

    # P5: nothing recorded yet
    p.arrives("2025-10-08T23:00+01:00")

    # P6: safeguarding override by the team lead (no consent), then reached by phone at 45
    # minutes and engaged
    p6 = p.arrives("2025-10-09T20:00+01:00", age=15)
    p.at("2025-10-09T20:40+01:00")
    p.consent(
        p6,
        ConsentOutcome.SAFEGUARDING_OVERRIDE,
        by=p.lead,
        override_reason="synthetic: risk of serious harm",
        authoriser_name="Duty Manager",
        authoriser_role="Safeguarding lead",
        override_at=p.clock(),
    )
    p.at("2025-10-09T21:00+01:00")
    assert p.casework.assign(p.lead, p6, p.ash.id) is None
    p.contact(p6, "2025-10-09T20:45+01:00", "phone", "engaged")

    # later in October: closures and P0's follow-up
    p.at("2025-10-12T10:00+01:00")
    p.follow_up(p0)
    p.at("2025-10-20T16:00+01:00")
    p.close(p1, "referred_on")
    p.close(p2, "disengaged")
    p.close(p3, "declined")

    report = ReportService(p.facts).monthly_report(SITE_A, OCTOBER_2025)
    assert report.count("candidates") == 6
    assert report.count("approached") == 4  # P1, P2, P3 and P6 (reached after the override)
    assert report.breakdown("consent_given", "giver")["young_person_16_plus"] == 2
    assert (
        report.count("declined"),
        report.count("not_approached"),
        report.count("awaiting_outcome"),
        report.count("override_without_consent"),
        report.count("safeguarding_overrides"),
    ) == (1, 1, 1, 1, 1)
    assert report.count("contacted") == 3  # P1 (face to face first), P2 and P6 (phone)
    assert report.breakdown("contacted", "first_contact") == {"face_to_face": 1, "phone": 2}
    assert report.count("engaged") == 2  # P1 and P6
    assert report.breakdown("engaged", "first_contact") == {
        "face_to_face": 1,
        "phone": 1,
        "not_recorded": 0,
    }
    assert report.breakdown("engaged", "age_band")["16_to_17"] == 1
    assert report.breakdown("engaged", "age_band")["10_to_15"] == 1
    assert report.count("signposted") == 1
    assert report.count("referred_on") == 1
    assert report.breakdown("referred_on", "service_type") == {"mental_health": 1}
    assert report.count("closed") == 3
    assert report.breakdown("closed", "outcome") == {
        "declined": 1,
        "disengaged": 1,
        "referred_on": 1,
    }
    assert report.count("follow_ups_done") == 1  # P0's, though P0 arrived 13 months before
    times = report.approach_times  # P1 20 (the contact), P3 30, P6 45 (the contact), P2 60
    assert (times.count, times.median_minutes, times.p90_minutes) == (4, 37.5, 60)

    september_2024 = ReportService(p.facts).monthly_report(SITE_A, ReportMonth(2024, 9))
    assert september_2024.count("engaged") == 1
    assert september_2024.approach_times.median_minutes == 30  # P0's contact, not the record
    april_2025 = ReportService(p.facts).monthly_report(SITE_A, ReportMonth(2025, 4))
    assert april_2025.breakdown("closed", "outcome") == {"support_completed": 1}


def test_a_year_on_the_engaged_and_the_rest_are_counted_apart(programme):
    p = programme
    engaged = p.arrives("2024-10-02T19:00+01:00")
    p.at("2024-10-02T19:30+01:00")
    p.given(engaged, 17, ConsentGiver.YOUNG_PERSON_16_PLUS)
    p.support(engaged)  # support started: engaged, though no contact was logged
    p.arrives("2024-10-03T19:00+01:00")  # never approached
    report = ReportService(p.facts).monthly_report(SITE_A, OCTOBER_2025)
    assert report.breakdown("reattendance_cohort", "engaged") == {"engaged": 1, "not_engaged": 1}


def test_a_contact_time_is_the_workers_not_the_servers(programme):
    """The contact's own time, as entered, decides the approach time; when it was typed
    in does not (the approach outcome recorded first still bounds it)."""
    p = programme
    rid = p.arrives("2025-10-10T08:00+01:00")
    p.at("2025-10-10T09:00+01:00")
    p.given(rid, 17, ConsentGiver.YOUNG_PERSON_16_PLUS)
    p.at("2025-10-11T09:00+01:00")
    p.contact(rid, "2025-10-10T08:10+01:00", "face_to_face", "spoke_not_engaged")
    report = ReportService(p.facts).monthly_report(SITE_A, OCTOBER_2025)
    assert report.approach_times.median_minutes == 10
    assert report.count("engaged") == 0 and report.count("contacted") == 1
