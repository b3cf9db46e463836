"""Builders for synthetic report facts. Nothing here is real patient data: facts carry no
identifiers at all, only ages, sexes, times and outcomes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from referral_gateway.domain.report_facts import (
    ConsentGiver,
    ConsentOutcome,
    ContactMethod,
    InjuryCategory,
    ReportFacts,
)

SITE = "RXX01"
OTHER_SITE = "RYY02"


def at(text: str) -> datetime:
    """An aware UTC moment from 'YYYY-MM-DDTHH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def candidate(arrival: datetime, **changes: object) -> ReportFacts:
    base = ReportFacts(
        site=SITE,
        arrival=arrival,
        age_at_arrival=17,
        sex="male",
        candidate_rule="coded",
        injury_category=InjuryCategory.BLADED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def many(n: int, first_arrival: datetime, **changes: object) -> list[ReportFacts]:
    """n candidates arriving an hour apart from `first_arrival`, all alike otherwise.
    `approach_after` (minutes) sets approached_at relative to each arrival."""
    after = changes.pop("approach_after", None)
    out = []
    for i in range(n):
        arrival = first_arrival + timedelta(hours=i)
        extra = dict(changes)
        if after is not None:
            extra["approached_at"] = arrival + timedelta(minutes=float(after))  # type: ignore[arg-type]
        out.append(candidate(arrival, **extra))
    return out


def screened_only(n: int, first_arrival: datetime) -> list[ReportFacts]:
    return [
        ReportFacts(
            site=SITE,
            arrival=first_arrival + timedelta(minutes=30 * i),
            age_at_arrival=40,
            sex="female",
        )
        for i in range(n)
    ]


def october_2024() -> list[ReportFacts]:
    """The hand-checked dataset of tests/reporting/test_monthly_report.py.

    October 2024 at site RXX01 (clocks go back on Sunday 27 October):

    | group | n | age | sex | injury | rule | outcome | approach | contact | engaged |
    |---|---|---|---|---|---|---|---|---|---|
    | A | 12 | 20 | male | bladed | coded | given, 16+ | 30 min | f2f | yes |
    | B | 5 | 14 | male | body_part | coded | given, parent | 60 min | phone | no |
    | C | 3 | 14 | female | body_part | free_text | given, Gillick | 90 min | f2f | yes |
    | D | 3 | 17 | male | firearm | coded | override only | - | - | no |
    | E | 9 | 17 | male | bladed | coded | declined | 20 min | - | no |
    | F | 5 | 14 | female | sexual | free_text | not approached | - | - | no |
    | G | 3 | 20 | female | other | free_text | (none yet) | - | - | no |

    A are also referred on to substance_misuse; C are signposted. Plus 460 screened
    non-candidates in October (two of them on the month's edges), two just outside it,
    8 August candidates closed in October (6 completed, 2 disengaged), 13 April candidates
    whose 6-month follow-up was done in October, and 20 October 2023 candidates: 12 engaged
    (1 came back with a violent injury), 8 not engaged (7 came back).
    """
    f2f, phone = ContactMethod.FACE_TO_FACE, ContactMethod.PHONE
    given = ConsentOutcome.GIVEN
    facts: list[ReportFacts] = []
    facts += many(
        12,
        at("2024-10-02T10:00"),
        age_at_arrival=20,
        consent_outcome=given,
        consent_giver=ConsentGiver.YOUNG_PERSON_16_PLUS,
        approach_after=30,
        first_contact_method=f2f,
        engaged=True,
        onward_referrals=("substance_misuse",),
    )
    facts += many(
        5,
        at("2024-10-05T10:00"),
        age_at_arrival=14,
        injury_category=InjuryCategory.BODY_PART,
        consent_outcome=given,
        consent_giver=ConsentGiver.PARENT_GUARDIAN,
        approach_after=60,
        first_contact_method=phone,
    )
    facts += many(
        3,
        at("2024-10-08T10:00"),
        age_at_arrival=14,
        sex="female",
        injury_category=InjuryCategory.BODY_PART,
        candidate_rule="free_text",
        consent_outcome=given,
        consent_giver=ConsentGiver.GILLICK_COMPETENT_UNDER_16,
        approach_after=90,
        first_contact_method=f2f,
        engaged=True,
        signposted=True,
    )
    facts += many(
        3,
        at("2024-10-11T10:00"),
        injury_category=InjuryCategory.FIREARM,
        safeguarding_override=True,
    )
    facts += many(
        9, at("2024-10-14T10:00"), consent_outcome=ConsentOutcome.DECLINED, approach_after=20
    )
    facts += many(
        5,
        at("2024-10-20T10:00"),
        age_at_arrival=14,
        sex="female",
        injury_category=InjuryCategory.SEXUAL,
        candidate_rule="free_text",
        consent_outcome=ConsentOutcome.NOT_APPROACHED,
        not_approached_reason="discharged_before_approach",
    )
    facts += many(
        3,
        at("2024-10-29T10:00"),
        age_at_arrival=20,
        sex="female",
        injury_category=InjuryCategory.OTHER,
        candidate_rule="free_text",
    )
    # screened, not candidates: 458 inside, 00:30 BST on 1 Oct, 23:30 GMT on 31 Oct
    facts += screened_only(458, at("2024-10-03T00:00"))
    facts += screened_only(1, at("2024-09-30T23:30"))
    facts += screened_only(1, at("2024-10-31T23:30"))
    # just outside: 23:59 BST on 30 Sep, 00:00 GMT on 1 Nov
    facts += screened_only(1, at("2024-09-30T22:59"))
    facts += screened_only(1, at("2024-11-01T00:00"))
    # closures in October of August candidates
    facts += many(
        6,
        at("2024-08-10T10:00"),
        consent_outcome=given,
        engaged=True,
        closed_at=at("2024-10-15T12:00"),
        closed_outcome="completed",
    )
    facts += many(
        2,
        at("2024-08-20T10:00"),
        consent_outcome=given,
        closed_at=at("2024-10-16T12:00"),
        closed_outcome="disengaged",
    )
    # 6-month follow-ups done in October of April candidates
    facts += many(
        13,
        at("2024-04-10T10:00"),
        consent_outcome=given,
        engaged=True,
        follow_up_done_at=at("2024-10-21T12:00"),
    )
    # October 2023 cohort for re-attendance within 12 months
    facts += many(1, at("2023-10-03T10:00"), engaged=True, reattended_violent_12m=True)
    facts += many(11, at("2023-10-04T10:00"), engaged=True)
    facts += many(7, at("2023-10-10T10:00"), reattended_violent_12m=True)
    facts += many(1, at("2023-10-12T10:00"))
    # another site's candidates never count here
    facts += [replace(f, site=OTHER_SITE) for f in many(4, at("2024-10-09T10:00"))]
    return facts
