"""Report facts read from the spine tables (SQLite here, PostgreSQL under the test command)."""

from datetime import timedelta

from referral_gateway.domain.detection import POSSIBLE_PREFIX
from referral_gateway.domain.istv import istv_rows
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.services.reporting import ReportService
from referral_gateway.storage.report_facts import SqlFacts
from tests.reporting.builders import at
from tests.reporting.spine_rows import Visit, assault, write

OCTOBER = ReportMonth(2024, 10)
SITE, OTHER = "RXX01", "RYY02"


def test_screened_candidates_and_breakdowns_come_from_the_database(engine):
    write(
        engine,
        [
            # 9 candidates: 8 coded (bladed), 1 free text (body part), on the month's first hour
            *[assault(SITE, at("2024-09-30T23:30") + timedelta(hours=i)) for i in range(8)],
            assault(
                SITE, at("2024-10-15T12:00"), signal="text:punched", injury="body_part", age=14
            ),
            # an adult assault: screened, not a candidate
            assault(SITE, at("2024-10-16T12:00"), age=40),
            # 20 other ED attendances, one not an emergency (not screened), one cancelled
            *[Visit(SITE, at("2024-10-20T08:00") + timedelta(minutes=i)) for i in range(18)],
            Visit(SITE, at("2024-10-21T08:00"), rule="not_emergency"),
            Visit(SITE, at("2024-10-21T09:00"), status="cancelled"),
            # a voided referral does not count as a candidate, nor one marked not an assault
            assault(SITE, at("2024-10-22T09:00"), referral_status="voided"),
            assault(SITE, at("2024-10-22T10:00"), referral_status="not_assault"),
            # outside the month, and another site
            assault(SITE, at("2024-09-30T22:30")),
            assault(OTHER, at("2024-10-10T10:00")),
        ],
    )
    report = ReportService(SqlFacts(engine)).monthly_report(SITE, OCTOBER)
    assert report.count("screened") == 8 + 1 + 1 + 18 + 2  # voided and marked were screened
    assert report.count("candidates") == 9
    assert report.breakdown("candidates", "rule") == {"snomed": 8, "text": 1}
    assert report.count("candidates", "injury", "body_part") == 1
    assert report.count("candidates", "age_band", "10_to_15") == 1
    assert report.count("awaiting_outcome") == 9  # nobody has recorded an approach yet


def test_a_candidate_whose_every_signal_is_a_suspicion_counts_as_possible(engine):
    suspected = POSSIBLE_PREFIX + "question_mark): free text mentions 'assault' (other, explicit)"
    write(
        engine,
        [
            assault(SITE, at("2024-10-03T10:00")),
            assault(SITE, at("2024-10-04T10:00"), signal="text:assault", signal_words=suspected),
        ],
    )
    report = ReportService(SqlFacts(engine)).monthly_report(SITE, OCTOBER)
    assert report.breakdown("candidates", "certainty") == {"definite": 1, "possible": 1}


def test_re_attendance_with_a_violent_injury_within_12_months_is_matched_by_hash(engine):
    write(
        engine,
        [
            assault(SITE, at("2023-10-05T10:00"), nhs_hash="a" * 64),
            assault(SITE, at("2023-10-06T10:00"), nhs_hash="b" * 64),
            assault(SITE, at("2023-10-07T10:00"), nhs_hash="c" * 64),
            assault(SITE, at("2023-10-08T10:00")),  # no NHS number: cannot be matched
            # a: back at another site within a year, as an adult (still a violent injury)
            assault(OTHER, at("2024-06-01T10:00"), nhs_hash="a" * 64, age=26),
            # b: back after more than a year
            assault(SITE, at("2024-10-07T10:00"), nhs_hash="b" * 64),
            # c: back within a year, but not injured by violence
            Visit(SITE, at("2024-01-01T10:00"), nhs_hash="c" * 64),
        ],
    )
    report = ReportService(SqlFacts(engine)).monthly_report(SITE, OCTOBER)
    assert report.count("reattendance_cohort") == 4
    assert report.count("reattended") == 1


def test_istv_rows_cover_assaults_at_any_age_and_nothing_else(engine):
    write(
        engine,
        [
            assault(SITE, at("2024-10-03T21:15"), age=34, injury="firearm"),
            assault(SITE, at("2024-10-04T01:00"), age=19),
            Visit(SITE, at("2024-10-05T10:00")),
        ],
    )
    rows = istv_rows(SqlFacts(engine).assault_facts(SITE, OCTOBER), SITE, OCTOBER)
    assert [(r.arrival_date, r.arrival_time, r.method) for r in rows] == [
        ("2024-10-03", "22:15", "firearm"),
        ("2024-10-04", "02:00", "bladed"),
    ]
    assert all(r.assault_date == "" and r.location_type == "" for r in rows)


def test_the_outcome_of_the_approach_comes_from_the_consent_records(engine):
    base = at("2024-10-10T10:00")
    write(
        engine,
        [
            # consent given by the young person 45 minutes after arrival, later withdrawn
            assault(
                SITE,
                base,
                consent=(
                    ("given", "young_person_16_plus", None, 45),
                    ("withdrawn", None, None, 600),
                ),
            ),
            # declined first, consent by a parent the next day: counts as given, timed at 30 min
            assault(
                SITE,
                base,
                age=14,
                consent=(("declined", None, None, 30), ("given", "parent_guardian", None, 1440)),
            ),
            # declined
            assault(SITE, base, consent=(("declined", None, None, 90),)),
            # not approached, then not approached again for another reason: the latest counts
            assault(
                SITE,
                base,
                consent=(
                    ("not_approached", None, "too_unwell", 20),
                    ("not_approached", None, "discharged_before_approach", 300),
                ),
            ),
            # a safeguarding override, no consent
            assault(SITE, base, consent=(("safeguarding_override", None, None, 60),)),
            # nothing recorded yet
            assault(SITE, base),
        ],
    )
    report = ReportService(SqlFacts(engine)).monthly_report(SITE, OCTOBER)
    assert report.count("candidates") == 6
    assert report.breakdown("consent_given", "giver") == {
        "young_person_16_plus": 1,
        "gillick_competent_under_16": 0,
        "parent_guardian": 1,
        "not_recorded": 0,
    }
    assert (
        report.count("declined"),
        report.count("override_without_consent"),
        report.count("awaiting_outcome"),
    ) == (1, 1, 1)
    assert report.breakdown("not_approached", "reason") == {"discharged_before_approach": 1}
    assert report.count("approached") == 3
    times = report.approach_times  # 30, 45, 90 minutes
    assert (times.count, times.median_minutes, times.p90_minutes) == (3, 45.0, 90)
