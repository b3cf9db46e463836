"""The monthly report on the hand-checked October 2024 dataset (see builders.october_2024
for the table every expected figure below was worked out from)."""

from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.reporting import build_monthly_report, build_monthly_reports
from tests.reporting.builders import SITE, at, many, october_2024

OCTOBER = ReportMonth(2024, 10)


def october():
    return build_monthly_report(SITE, OCTOBER, october_2024())


def test_raw_counts_match_the_hand_counted_dataset():
    r = october()
    assert r.count("screened") == 500  # 40 candidates + 458 + both edges of the month
    assert r.count("candidates") == 40
    assert r.breakdown("candidates", "rule") == {"coded": 29, "free_text": 11}
    assert r.breakdown("candidates", "age_band") == {
        "10_to_15": 13,
        "16_to_17": 12,
        "18_to_25": 15,
        "other_or_unknown": 0,
    }
    assert r.breakdown("candidates", "sex") == {"male": 29, "female": 11, "other": 0, "unknown": 0}
    assert r.breakdown("candidates", "injury") == {
        "body_part": 8,
        "bladed": 21,
        "firearm": 3,
        "sexual": 5,
        "exploitation": 0,
        "other": 3,
    }
    assert r.count("approached") == 29  # A + B + C + E
    assert r.count("consent_given") == 20
    assert r.breakdown("consent_given", "giver") == {
        "young_person_16_plus": 12,
        "gillick_competent_under_16": 3,
        "parent_guardian": 5,
        "not_recorded": 0,
    }
    assert r.count("override_without_consent") == 3
    assert r.count("declined") == 9
    assert r.count("not_approached") == 5
    assert r.breakdown("not_approached", "reason") == {"discharged_before_approach": 5}
    assert r.count("awaiting_outcome") == 3
    assert r.count("safeguarding_overrides") == 3
    assert r.breakdown("contacted", "first_contact") == {"face_to_face": 15, "phone": 5}
    assert r.count("engaged") == 15
    assert r.breakdown("engaged", "first_contact") == {
        "face_to_face": 15,
        "phone": 0,
        "not_recorded": 0,
    }
    assert r.count("signposted") == 3
    assert r.count("referred_on") == 12
    assert r.breakdown("referred_on", "service_type") == {"substance_misuse": 12}
    assert r.count("closed") == 8
    assert r.breakdown("closed", "outcome") == {"completed": 6, "disengaged": 2}
    assert r.count("follow_ups_done") == 13
    assert r.count("reattendance_cohort") == 20
    assert r.breakdown("reattendance_cohort", "engaged") == {"engaged": 12, "not_engaged": 8}
    assert r.count("reattended") == 8
    assert r.breakdown("reattended", "engaged") == {"engaged": 1, "not_engaged": 7}


def test_median_and_90th_percentile_time_from_arrival_to_approach():
    # 29 timed approaches: 9 at 20 min, 12 at 30, 5 at 60, 3 at 90.
    # median = 15th = 30; 90th percentile = ceil(26.1) = 27th = 90
    times = october().approach_times
    assert (times.count, times.median_minutes, times.p90_minutes) == (29, 30.0, 90)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    facts = many(2, at("2024-10-02T10:00"), approach_after=10) + many(
        2, at("2024-10-03T10:00"), approach_after=25
    )
    times = build_monthly_report(SITE, OCTOBER, facts).approach_times
    assert (times.median_minutes, times.p90_minutes) == (17.5, 25)


def test_published_figures_are_rounded_suppressed_and_protected():
    p = publish(october())
    v = p.value
    assert v("screened") == 500
    assert v("candidates") == 40
    assert v("candidates", "age_band", "10_to_15") == 15  # 13
    assert v("candidates", "age_band", "16_to_17") == 10  # 12
    assert v("candidates", "age_band", "other_or_unknown") == 0
    assert v("candidates", "injury", "firearm") == "*"  # 3
    assert v("candidates", "injury", "body_part") == 10  # 8
    assert v("consent_given") == 20
    assert v("override_without_consent") == "*"
    assert v("declined") == 10  # 9
    assert v("not_approached") == "*"
    assert v("approached") == 30  # 29
    assert v("follow_ups_done") == 15  # 13
    assert v("closed") == 10  # 8
    assert v("closed", "outcome", "completed") == "*"


def test_a_lone_suppressed_cell_is_protected_by_secondary_suppression():
    # approached by sex: male 26, female 3. Female alone hidden would be 30 - 25 = 5 away
    # from the truth, so male is hidden as well.
    p = publish(october())
    assert p.value("approached", "sex", "female") == "*"
    assert p.value("approached", "sex", "male") == "*"
    # contacted: face to face 15, phone 5; phone hidden, so face to face too
    assert p.value("contacted", "first_contact", "phone") == "*"
    assert p.value("contacted", "first_contact", "face_to_face") == "*"
    assert p.value("contacted") == 20
    # engaged by age: 3 aged 10-15 and 12 aged 18-25; the 12 goes with the 3
    assert p.value("engaged", "age_band", "18_to_25") == "*"
    assert p.value("engaged", "age_band", "16_to_17") == 0


def test_percentages_come_from_the_rounded_figures():
    p = publish(october())
    assert p.rate("candidates_of_screened") == 8  # 40 / 500
    assert p.rate("approached_of_candidates") == 75  # 30 / 40 (raw 29 / 40 would be 73)
    assert p.rate("consent_of_approached") == 67  # 20 / 30
    assert p.rate("engaged_of_consent") == 75  # 15 / 20
    assert p.rate("engaged_after_face_to_face") == "*"  # denominator suppressed (secondary)
    assert p.rate("reattended_of_cohort") == 50  # 10 / 20
    assert p.rate("reattended_if_engaged") == "*"  # numerator 1


def test_approach_times_are_shown_when_enough_people_were_timed():
    p = publish(october())
    assert (p.approach_times.median_minutes, p.approach_times.p90_minutes) == (30, 90)


def test_approach_times_of_a_handful_of_people_are_suppressed():
    p = publish(
        build_monthly_report(SITE, OCTOBER, many(7, at("2024-10-02T10:00"), approach_after=12))
    )
    assert (p.approach_times.median_minutes, p.approach_times.p90_minutes) == ("*", "*")


def test_administrators_get_exact_counts():
    p = publish(october(), raw=True)
    assert p.value("approached") == 29
    assert p.value("approached", "sex", "female") == 3
    assert p.rate("approached_of_candidates") == 73
    assert p.disclosure == "raw"


def test_a_month_without_anyone_has_zeros_not_stars():
    p = publish(build_monthly_report(SITE, OCTOBER, []))
    assert p.value("candidates") == 0
    assert p.value("engaged", "sex", "male") == 0
    assert p.rate("approached_of_candidates") is None
    assert p.approach_times.median_minutes is None


def test_screened_can_come_from_a_database_count_instead_of_the_facts():
    facts = many(8, at("2024-10-02T10:00"))
    r = build_monthly_report(SITE, OCTOBER, facts, screened=1234)
    assert (r.count("screened"), r.count("candidates")) == (1234, 8)


def test_a_year_of_reports_in_one_pass_puts_each_fact_in_its_month():
    months = [ReportMonth(2024, m) for m in range(1, 13)]
    reports = build_monthly_reports(SITE, months, october_2024())
    assert reports[ReportMonth(2024, 10)].count("candidates") == 40
    assert reports[ReportMonth(2024, 8)].count("candidates") == 8
    assert reports[ReportMonth(2024, 4)].count("candidates") == 13
    assert reports[ReportMonth(2024, 9)].count("screened") == 1  # 23:59 BST on 30 Sep
    assert reports[ReportMonth(2024, 11)].count("screened") == 1  # 00:00 GMT on 1 Nov


def test_candidates_are_counted_as_definite_or_possible_and_suppressed_alike():
    start = at("2024-10-02T10:00")
    facts = [*many(12, start), *many(3, at("2024-10-10T10:00"), possible=True)]
    report = build_monthly_report(SITE, OCTOBER, facts)
    assert report.breakdown("candidates", "certainty") == {"definite": 12, "possible": 3}
    published = publish(report)
    assert published.value("candidates") == 15
    assert published.value("candidates", "certainty", "possible") == "*"  # 3
    # the 12 alone would give the 3 away (15 - 12), so it is hidden as well
    assert published.value("candidates", "certainty", "definite") == "*"


def test_a_month_of_possible_candidates_only_shows_them_rounded():
    facts = many(9, at("2024-10-02T10:00"), possible=True)
    published = publish(build_monthly_report(SITE, OCTOBER, facts))
    assert published.value("candidates", "certainty", "possible") == 10  # 9
    assert published.value("candidates", "certainty", "definite") == 0
