"""What a candidate's consent records and casework mean for the report, without a database
(`domain.report_history`; the SQL path is covered by test_sql_facts and
test_casework_figures)."""

from dataclasses import dataclass
from datetime import datetime

import pytest

from referral_gateway.domain.report_facts import (
    ConsentGiver,
    ConsentOutcome,
    ContactMethod,
    ReportFacts,
)
from referral_gateway.domain.report_history import (
    approach_of,
    approached_at,
    casework_of,
    engagement_of,
)
from tests.reporting.builders import SITE, at


@dataclass
class Record:
    seq: int
    outcome: str
    recorded_at: datetime
    giver: str | None = None
    not_approached_reason: str | None = None


@dataclass
class Contact:
    id: int
    at: datetime
    method: str
    outcome: str


@dataclass
class Onward:
    kind: str
    service_type: str


def test_consent_given_then_withdrawn_still_counts_as_given_by_the_first_giver():
    approach = approach_of(
        [
            Record(2, "withdrawn", at("2024-10-03T10:00")),
            Record(1, "given", at("2024-10-02T10:30"), giver="parent_guardian"),
        ]
    )
    assert approach.outcome is ConsentOutcome.GIVEN
    assert approach.giver is ConsentGiver.PARENT_GUARDIAN
    assert approach.approached_at == at("2024-10-02T10:30")


def test_an_override_alone_is_counted_beside_no_outcome_and_is_no_approach():
    approach = approach_of([Record(1, "safeguarding_override", at("2024-10-02T10:30"))])
    assert (approach.outcome, approach.override, approach.approached_at) == (None, True, None)


def test_not_approached_takes_the_latest_reason_and_has_no_approach_time():
    approach = approach_of(
        [
            Record(1, "not_approached", at("2024-10-02T11:00"), not_approached_reason="too_unwell"),
            Record(2, "not_approached", at("2024-10-02T12:00"), not_approached_reason="other"),
        ]
    )
    assert approach.outcome is ConsentOutcome.NOT_APPROACHED
    assert (approach.not_approached_reason, approach.approached_at) == ("other", None)


def test_an_earlier_contact_that_reached_them_sets_the_approach_time_and_first_method():
    approach = approach_of(
        [Record(1, "given", at("2024-10-02T11:00"), giver="young_person_16_plus")]
    )
    work = casework_of(
        [
            Contact(2, at("2024-10-02T10:40"), "phone", "spoke_not_engaged"),
            Contact(1, at("2024-10-02T10:20"), "face_to_face", "engaged"),
        ],
        [Onward("signpost", "youth_club"), Onward("referral", "camhs")],
        engaged=False,
    )
    assert approached_at(approach, work) == at("2024-10-02T10:20")
    assert work.first_method is ContactMethod.FACE_TO_FACE
    assert (work.engaged, work.signposted, work.referred_to) == (True, True, ("camhs",))


def test_of_the_year_before_only_engagement_is_kept():
    assert engagement_of([Contact(1, at("2023-10-02T10:20"), "phone", "engaged")], False).engaged
    assert not engagement_of([], False).engaged
    assert engagement_of([], True).engaged


@pytest.mark.parametrize(
    "outcome", [ConsentOutcome.WITHDRAWN, ConsentOutcome.SAFEGUARDING_OVERRIDE]
)
def test_report_facts_refuse_an_outcome_that_is_not_one_of_an_approach(outcome):
    with pytest.raises(ValueError, match="consent_outcome"):
        ReportFacts(SITE, at("2024-10-02T10:00"), candidate_rule="snomed", consent_outcome=outcome)
