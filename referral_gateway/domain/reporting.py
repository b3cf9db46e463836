"""The monthly throughput report: one site, one calendar month (Europe/London).

    screened ─► candidates (by certainty: definite or possible, by rule, age band, sex, injury)
                  = consent given + safeguarding override without consent + declined
                    + not approached + awaiting an outcome
                approached, consent given (by whom), declined, not approached (by reason),
                safeguarding overrides, first contact (face to face / phone), engaged,
                signposted, referred on (by service type)
    this month: closed (by outcome), 6-month follow-ups done
    a year on:  the candidates of the same month last year, and how many came back to an
                ED with a violent injury within 12 months (engaged or not)

Counts of a month's cohort (attendances that arrived in the month) stand as they are when
the report is built: a report built on the 1st sees less engagement than one built later.
Every figure here is a raw count; `report_published.publish` applies disclosure control.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from referral_gateway.domain.disclosure import Relation
from referral_gateway.domain.report_facts import (
    ConsentGiver,
    ConsentOutcome,
    ContactMethod,
    InjuryCategory,
    ReportFacts,
)
from referral_gateway.domain.report_period import ReportMonth


@dataclass(frozen=True, slots=True, order=True)
class Cell:
    """One figure: a measure, optionally broken down (`breakdown`, `category`)."""

    measure: str
    breakdown: str = ""
    category: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.measure, self.breakdown, self.category) if p)


# -- measures, in report order ------------------------------------------------------------
SCREENED = "screened"
CANDIDATES = "candidates"
APPROACHED = "approached"
CONSENT_GIVEN = "consent_given"
OVERRIDE_WITHOUT_CONSENT = "override_without_consent"
DECLINED = "declined"
NOT_APPROACHED = "not_approached"
AWAITING_OUTCOME = "awaiting_outcome"
SAFEGUARDING_OVERRIDES = "safeguarding_overrides"
CONTACTED = "contacted"
ENGAGED = "engaged"
SIGNPOSTED = "signposted"
REFERRED_ON = "referred_on"
CLOSED = "closed"
SENT_TO_SERVICES = "sent_to_services"
FOLLOW_UPS_DONE = "follow_ups_done"
REATTENDANCE_COHORT = "reattendance_cohort"
REATTENDED = "reattended"

MEASURE_LABELS: dict[str, str] = {
    SCREENED: "ED attendances screened",
    CANDIDATES: "Candidates detected",
    APPROACHED: "Approached",
    CONSENT_GIVEN: "Consent given",
    OVERRIDE_WITHOUT_CONSENT: "Safeguarding override (no consent)",
    DECLINED: "Declined",
    NOT_APPROACHED: "Not approached",
    AWAITING_OUTCOME: "Awaiting an outcome",
    SAFEGUARDING_OVERRIDES: "Safeguarding overrides (all)",
    CONTACTED: "First contact made",
    ENGAGED: "Engaged",
    SIGNPOSTED: "Signposted",
    REFERRED_ON: "Referred on (young people)",
    CLOSED: "Closed this month",
    SENT_TO_SERVICES: "Onward referrals sent to services this month",
    FOLLOW_UPS_DONE: "6-month follow-ups done this month",
    REATTENDANCE_COHORT: "Candidates 12 months earlier",
    REATTENDED: "Re-attended with a violent injury within 12 months",
}

# -- breakdowns ---------------------------------------------------------------------------
BY_CERTAINTY = "certainty"  # definite, or possible: on suspicion only ("?assault")
BY_RULE = "rule"
BY_AGE = "age_band"
BY_SEX = "sex"
BY_INJURY = "injury"
BY_GIVER = "giver"
BY_REASON = "reason"
BY_METHOD = "first_contact"
BY_SERVICE = "service_type"
BY_OUTCOME = "outcome"
BY_ENGAGED = "engaged"
BY_DIRECTORY_SERVICE = "service"  # a service of the directory (domain.onward)
BY_TASK_STATUS = "task_status"  # where its onward referral stands (TaskStatus)

BREAKDOWN_LABELS: dict[str, str] = {
    BY_CERTAINTY: "by certainty",
    BY_RULE: "by detection rule",
    BY_AGE: "by age band",
    BY_SEX: "by sex",
    BY_INJURY: "by injury category",
    BY_GIVER: "by who consented",
    BY_REASON: "by reason",
    BY_METHOD: "by first contact",
    BY_SERVICE: "by service type",
    BY_OUTCOME: "by outcome",
    BY_ENGAGED: "by engagement",
    BY_DIRECTORY_SERVICE: "by service",
    BY_TASK_STATUS: "by outcome at the service",
}

NON_ADDITIVE = frozenset({BY_SERVICE})  # a young person can be referred to several services

NOT_RECORDED = "not_recorded"
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("10_to_15", 10, 15),
    ("16_to_17", 16, 17),
    ("18_to_25", 18, 25),
)
AGE_OTHER = "other_or_unknown"
SEXES = ("male", "female", "other", "unknown")
ENGAGED_YES, ENGAGED_NO = "engaged", "not_engaged"
DEFINITE, POSSIBLE = "definite", "possible"  # as domain.detection.CERTAINTIES

CATEGORY_LABELS: dict[str, str] = {
    "10_to_15": "10 to 15",
    "16_to_17": "16 to 17",
    "18_to_25": "18 to 25",
    AGE_OTHER: "other or unknown age",
    "body_part": "body part",
    NOT_RECORDED: "not recorded",
    "young_person_16_plus": "young person (16+)",
    "gillick_competent_under_16": "Gillick-competent under 16",
    "parent_guardian": "parent or guardian",
    "face_to_face": "face to face",
    "phone": "phone",
    ENGAGED_YES: "engaged",
    ENGAGED_NO: "not engaged",
    DEFINITE: "definite assault",
    POSSIBLE: "possible assault (suspected)",
}

_FIXED_CATEGORIES: dict[str, tuple[str, ...]] = {
    BY_CERTAINTY: (DEFINITE, POSSIBLE),
    BY_AGE: (*(band for band, _, _ in AGE_BANDS), AGE_OTHER),
    BY_SEX: SEXES,
    BY_INJURY: tuple(c.value for c in InjuryCategory),
    BY_GIVER: (*(g.value for g in ConsentGiver), NOT_RECORDED),
    BY_ENGAGED: (ENGAGED_YES, ENGAGED_NO),
}
_PEOPLE_BREAKDOWNS = (BY_AGE, BY_SEX, BY_INJURY)


def measure_label(measure: str) -> str:
    return MEASURE_LABELS.get(measure, measure.replace("_", " "))


def category_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category.replace("_", " "))


def cell_label(cell: Cell) -> str:
    if not cell.breakdown:
        return measure_label(cell.measure)
    return f"{measure_label(cell.measure)}, {category_label(cell.category)}"


@dataclass(frozen=True, slots=True)
class Rate:
    key: str
    label: str
    numerator: Cell
    denominator: Cell


RATES: tuple[Rate, ...] = (
    Rate(
        "candidates_of_screened",
        "Candidates per 100 attendances screened",
        Cell(CANDIDATES),
        Cell(SCREENED),
    ),
    Rate(
        "approached_of_candidates",
        "Approached, % of candidates",
        Cell(APPROACHED),
        Cell(CANDIDATES),
    ),
    Rate(
        "consent_of_approached",
        "Consent given, % of approached",
        Cell(CONSENT_GIVEN),
        Cell(APPROACHED),
    ),
    Rate("engaged_of_consent", "Engaged, % of consent given", Cell(ENGAGED), Cell(CONSENT_GIVEN)),
    Rate(
        "engaged_after_face_to_face",
        "Engaged, % of first contacts face to face",
        Cell(ENGAGED, BY_METHOD, "face_to_face"),
        Cell(CONTACTED, BY_METHOD, "face_to_face"),
    ),
    Rate(
        "engaged_after_phone",
        "Engaged, % of first contacts by phone",
        Cell(ENGAGED, BY_METHOD, "phone"),
        Cell(CONTACTED, BY_METHOD, "phone"),
    ),
    Rate(
        "reattended_of_cohort",
        "Re-attended within 12 months, % of candidates a year before",
        Cell(REATTENDED),
        Cell(REATTENDANCE_COHORT),
    ),
    Rate(
        "reattended_if_engaged",
        "Re-attended within 12 months, % of those engaged",
        Cell(REATTENDED, BY_ENGAGED, ENGAGED_YES),
        Cell(REATTENDANCE_COHORT, BY_ENGAGED, ENGAGED_YES),
    ),
    Rate(
        "reattended_if_not_engaged",
        "Re-attended within 12 months, % of those not engaged",
        Cell(REATTENDED, BY_ENGAGED, ENGAGED_NO),
        Cell(REATTENDANCE_COHORT, BY_ENGAGED, ENGAGED_NO),
    ),
)


@dataclass(frozen=True, slots=True)
class ApproachTimes:
    """Minutes from arrival to the first approach, over the month's approached candidates
    with both times known. Median: the middle value (mean of the two middle values for an
    even count). 90th percentile: nearest rank, the ceil(0.9 n)-th smallest."""

    count: int
    median_minutes: float | None
    p90_minutes: float | None

    @classmethod
    def of(cls, minutes: Sequence[float]) -> ApproachTimes:
        if not minutes:
            return cls(0, None, None)
        ordered = sorted(minutes)
        rank = math.ceil(0.9 * len(ordered))
        return cls(len(ordered), float(statistics.median(ordered)), ordered[rank - 1])


@dataclass(frozen=True)
class MonthlyReport:
    """Raw counts for one site and month, in report order, with the relations that tie
    them (what secondary suppression must respect)."""

    site: str
    month: ReportMonth
    counts: Mapping[Cell, int]
    relations: tuple[Relation[Cell], ...]
    approach_times: ApproachTimes

    def count(self, measure: str, breakdown: str = "", category: str = "") -> int:
        return self.counts[Cell(measure, breakdown, category)]

    def breakdown(self, measure: str, breakdown: str) -> dict[str, int]:
        return {
            c.category: n
            for c, n in self.counts.items()
            if c.measure == measure and c.breakdown == breakdown
        }


def age_band(age: int | None) -> str:
    if age is not None:
        for band, low, high in AGE_BANDS:
            if low <= age <= high:
                return band
    return AGE_OTHER


def build_monthly_report(
    site: str,
    month: ReportMonth,
    facts: Iterable[ReportFacts],
    *,
    screened: int | None = None,
) -> MonthlyReport:
    """One site's report for one month. See `build_monthly_reports` for what `facts` must
    cover and what `screened` does."""
    return build_monthly_reports(
        site, [month], facts, screened=None if screened is None else {month: screened}
    )[month]


def build_monthly_reports(
    site: str,
    months: Sequence[ReportMonth],
    facts: Iterable[ReportFacts],
    *,
    screened: Mapping[ReportMonth, int] | None = None,
) -> dict[ReportMonth, MonthlyReport]:
    """Reports for several months of one site in one pass over `facts`.

    `facts` must hold the site's attendances that arrived in the months and in the 12 months
    before the first of them (for re-attendance), and every referral closed or followed up
    in the months. Facts of other sites are ignored. When `screened` is given it is the
    number of ED attendances screened in each month (counted by the database), and `facts`
    need only hold candidates; otherwise screened attendances are counted from `facts`.
    """
    wanted = set(months)
    year_on = {m.shifted(-12): m for m in months}
    tallies = {m: _Tally() for m in months}
    month_of = _MonthFinder(min(months).shifted(-12), max(months)) if months else ReportMonth.of
    for fact in facts:
        if fact.site != site:
            continue
        arrived = month_of(fact.arrival)
        if arrived in wanted:
            tallies[arrived].add_arrival(fact, count_screened=screened is None)
        if fact.is_candidate and arrived in year_on:
            tallies[year_on[arrived]].add_year_on(fact)
        if fact.closed_at is not None:
            closed = month_of(fact.closed_at)
            if closed in wanted and fact.is_candidate:
                tallies[closed].add(
                    (CLOSED, "", ""), (CLOSED, BY_OUTCOME, fact.closed_outcome or NOT_RECORDED)
                )
        for sent_at, service, status in fact.onward_tasks if fact.is_candidate else ():
            sent = month_of(sent_at)
            if sent in wanted:
                tallies[sent].add(
                    (SENT_TO_SERVICES, "", ""),
                    (SENT_TO_SERVICES, BY_DIRECTORY_SERVICE, service),
                    (SENT_TO_SERVICES, BY_TASK_STATUS, status),
                )
        if fact.follow_up_done_at is not None and fact.is_candidate:
            followed = month_of(fact.follow_up_done_at)
            if followed in wanted:
                tallies[followed].add((FOLLOW_UPS_DONE, "", ""))
    if screened is not None:
        for m in months:
            tallies[m].counts[(SCREENED, "", "")] = screened.get(m, 0)
    return {m: tallies[m].report(site, m) for m in months}


class _MonthFinder:
    """`ReportMonth.of`, by binary search over precomputed month starts for moments inside
    first..last (a zone conversion per fact is the slow part of a year's report)."""

    def __init__(self, first: ReportMonth, last: ReportMonth) -> None:
        self.months: list[ReportMonth] = []
        month = first
        while month <= last:
            self.months.append(month)
            month = month.next()
        self.starts = [m.start() for m in self.months]
        self.end = last.end()

    def __call__(self, moment: datetime) -> ReportMonth:
        if self.starts[0] <= moment < self.end:
            return self.months[bisect.bisect_right(self.starts, moment) - 1]
        return ReportMonth.of(moment)


Key = tuple[str, str, str]
"""A `Cell` as a plain tuple while counting: tuples hash and compare far faster than a
frozen dataclass, and a year's report counts some 160,000 times."""


@dataclass
class _Tally:
    counts: defaultdict[Key, int] = field(default_factory=lambda: defaultdict(int))
    minutes: list[float] = field(default_factory=list)

    def add(self, *keys: Key) -> None:
        counts = self.counts
        for k in keys:
            counts[k] += 1

    def add_people(self, measure: str, fact: ReportFacts) -> None:
        injury = (fact.injury_category or InjuryCategory.OTHER).value
        sex = fact.sex if fact.sex in SEXES else "unknown"
        self.add(
            (measure, "", ""),
            (measure, BY_AGE, age_band(fact.age_at_arrival)),
            (measure, BY_SEX, sex),
            (measure, BY_INJURY, injury),
        )

    def add_arrival(self, fact: ReportFacts, *, count_screened: bool) -> None:
        if fact.screened and count_screened:
            self.add((SCREENED, "", ""))
        if not fact.is_candidate:
            return
        assert fact.candidate_rule is not None
        self.add_people(CANDIDATES, fact)
        self.add((CANDIDATES, BY_RULE, fact.candidate_rule))
        self.add((CANDIDATES, BY_CERTAINTY, POSSIBLE if fact.possible else DEFINITE))
        outcome = fact.consent_outcome  # given, declined, not approached or None
        given = outcome is ConsentOutcome.GIVEN
        override = fact.safeguarding_override
        if given:
            self.add_people(CONSENT_GIVEN, fact)
            giver = fact.consent_giver.value if fact.consent_giver else NOT_RECORDED
            self.add((CONSENT_GIVEN, BY_GIVER, giver))
        elif override:
            self.add((OVERRIDE_WITHOUT_CONSENT, "", ""))
        elif outcome is ConsentOutcome.DECLINED:
            self.add((DECLINED, "", ""))
        elif outcome is ConsentOutcome.NOT_APPROACHED:
            reason = fact.not_approached_reason or NOT_RECORDED
            self.add((NOT_APPROACHED, "", ""), (NOT_APPROACHED, BY_REASON, reason))
        else:
            self.add((AWAITING_OUTCOME, "", ""))
        if override:
            self.add((SAFEGUARDING_OVERRIDES, "", ""))
        approached = fact.approached_at is not None or given or (outcome is ConsentOutcome.DECLINED)
        if approached:
            self.add_people(APPROACHED, fact)
        if fact.approached_at is not None:
            minutes = (fact.approached_at - fact.arrival).total_seconds() / 60
            if minutes >= 0:  # an approach before arrival is a data error: not timed
                self.minutes.append(minutes)
        method = fact.first_contact_method
        if method is not None:
            self.add((CONTACTED, "", ""), (CONTACTED, BY_METHOD, method.value))
        if fact.engaged:
            self.add_people(ENGAGED, fact)
            self.add((ENGAGED, BY_METHOD, method.value if method else NOT_RECORDED))
        if fact.signposted:
            self.add((SIGNPOSTED, "", ""))
        if fact.onward_referrals:
            self.add((REFERRED_ON, "", ""))
            for service in sorted(set(fact.onward_referrals)):
                self.add((REFERRED_ON, BY_SERVICE, service))

    def add_year_on(self, fact: ReportFacts) -> None:
        engaged = ENGAGED_YES if fact.engaged else ENGAGED_NO
        self.add((REATTENDANCE_COHORT, "", ""), (REATTENDANCE_COHORT, BY_ENGAGED, engaged))
        if fact.reattended_violent_12m:
            self.add((REATTENDED, "", ""), (REATTENDED, BY_ENGAGED, engaged))

    def report(self, site: str, month: ReportMonth) -> MonthlyReport:
        counts = _ordered({Cell(*k): n for k, n in self.counts.items()})
        return MonthlyReport(
            site=site,
            month=month,
            counts=counts,
            relations=relations_of(counts),
            approach_times=ApproachTimes.of(self.minutes),
        )


_LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    (SCREENED, ()),
    (CANDIDATES, (BY_CERTAINTY, BY_RULE, BY_AGE, BY_SEX, BY_INJURY)),
    (APPROACHED, _PEOPLE_BREAKDOWNS),
    (CONSENT_GIVEN, (BY_GIVER, *_PEOPLE_BREAKDOWNS)),
    (OVERRIDE_WITHOUT_CONSENT, ()),
    (DECLINED, ()),
    (NOT_APPROACHED, (BY_REASON,)),
    (AWAITING_OUTCOME, ()),
    (SAFEGUARDING_OVERRIDES, ()),
    (CONTACTED, (BY_METHOD,)),
    (ENGAGED, (BY_METHOD, *_PEOPLE_BREAKDOWNS)),
    (SIGNPOSTED, ()),
    (REFERRED_ON, (BY_SERVICE,)),
    (CLOSED, (BY_OUTCOME,)),
    (SENT_TO_SERVICES, (BY_DIRECTORY_SERVICE, BY_TASK_STATUS)),
    (FOLLOW_UPS_DONE, ()),
    (REATTENDANCE_COHORT, (BY_ENGAGED,)),
    (REATTENDED, (BY_ENGAGED,)),
)
_FIXED_FOR: dict[tuple[str, str], tuple[str, ...]] = {
    (CONTACTED, BY_METHOD): tuple(m.value for m in ContactMethod),
    (ENGAGED, BY_METHOD): (*(m.value for m in ContactMethod), NOT_RECORDED),
}

OUTCOME_PARTS = (
    CONSENT_GIVEN,
    OVERRIDE_WITHOUT_CONSENT,
    DECLINED,
    NOT_APPROACHED,
    AWAITING_OUTCOME,
)


def _ordered(raw: Mapping[Cell, int]) -> dict[Cell, int]:
    """Every figure of the layout, zeros included; fixed categories always present (stable
    rows month on month), data-driven ones (rules, reasons, services, closure outcomes) as
    they occur, alphabetically."""
    out: dict[Cell, int] = {}
    for measure, breakdowns in _LAYOUT:
        out[Cell(measure)] = raw.get(Cell(measure), 0)
        for bd in breakdowns:
            fixed = _FIXED_FOR.get((measure, bd), _FIXED_CATEGORIES.get(bd))
            seen = sorted(c.category for c in raw if c.measure == measure and c.breakdown == bd)
            categories = list(fixed) if fixed is not None else []
            categories += [c for c in seen if c not in categories]
            for cat in categories:
                out[Cell(measure, bd, cat)] = raw.get(Cell(measure, bd, cat), 0)
    return out


def relations_of(counts: Mapping[Cell, int]) -> tuple[Relation[Cell], ...]:
    """The additive relations among a report's figures: each measure equals the sum over
    each of its additive breakdowns, and the candidates split exactly by approach outcome."""
    parts: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in counts:
        if c.breakdown and c.breakdown not in NON_ADDITIVE:
            parts[(c.measure, c.breakdown)].append(c)
    rels = [Relation(Cell(m), tuple(cells)) for (m, _bd), cells in parts.items()]
    if Cell(CANDIDATES) in counts:
        rels.append(Relation(Cell(CANDIDATES), tuple(Cell(m) for m in OUTCOME_PARTS)))
    return tuple(rels)
