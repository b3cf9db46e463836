"""What the hub checks in a report that says it is disclosure-controlled: the same rules the
sites publish by (`domain.disclosure`), read back from the published figures. A report the
sites' own `publish` made always passes; one with a small number, an unrounded count, a
lone `*` in a total and its parts, or a rate not worked out from the shown figures fails,
naming the rule and the figures, never their values."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_gateway.domain.disclosure import SUPPRESSED
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import (
    Figure,
    PublishedRate,
    PublishedReport,
    disclosure_breach,
    publish,
)
from referral_gateway.domain.reporting import Cell, build_monthly_report
from tests.reporting.builders import SITE, at, many, october_2024, screened_only

OCTOBER = ReportMonth(2024, 10)


def october() -> PublishedReport:
    return publish(build_monthly_report(SITE, OCTOBER, october_2024()))


def with_figure(report: PublishedReport, cell: Cell, value: int | str) -> PublishedReport:
    figures = tuple(Figure(f.cell, value if f.cell == cell else f.value) for f in report.figures)
    assert figures != report.figures, "the figure should change"
    return replace(report, figures=figures)


def test_a_report_the_sites_publish_passes_the_hubs_checks():
    assert disclosure_breach(october()) is None


@settings(max_examples=40, deadline=None)
@given(
    candidates=st.integers(min_value=0, max_value=40),
    screened=st.integers(min_value=0, max_value=60),
    approach_after=st.one_of(st.none(), st.integers(min_value=5, max_value=300)),
)
def test_any_report_the_sites_publish_passes_the_hubs_checks(candidates, screened, approach_after):
    first = at("2024-10-02T10:00")
    facts = many(candidates, first, approach_after=approach_after) + screened_only(screened, first)
    report = publish(build_monthly_report(SITE, OCTOBER, facts))
    assert disclosure_breach(report) is None


def test_a_controlled_report_showing_a_three_is_refused_as_a_small_number():
    report = october()
    cell = Cell("candidates", "age_band", "16_to_17")
    breach = disclosure_breach(with_figure(report, cell, 3))
    assert breach is not None
    assert (breach.rule, breach.cells) == ("small_number", ("candidates/age_band/16_to_17",))


def test_a_count_not_rounded_to_five_is_refused():
    report = october()
    screened = Cell("screened")
    assert report.value("screened") not in (SUPPRESSED, 0)
    breach = disclosure_breach(with_figure(report, screened, 472))
    assert breach is not None and (breach.rule, breach.cells) == ("unrounded", ("screened",))


def test_a_total_with_a_single_hidden_part_is_refused_as_recoverable():
    # hiding one shown part of the candidates by sex, and only that one, lets a reader
    # subtract the others from the total and get it back
    report = october()
    by_sex = [
        f for f in report.figures if f.cell.measure == "candidates" and f.cell.breakdown == "sex"
    ]
    shown_parts = [f for f in by_sex if isinstance(f.value, int) and f.value > 0]
    assert not any(f.value == SUPPRESSED for f in by_sex) and shown_parts
    breach = disclosure_breach(with_figure(report, shown_parts[0].cell, SUPPRESSED))
    assert breach is not None and (breach.rule, breach.cells) == ("recoverable", ("candidates",))


def test_a_rate_not_worked_out_from_the_shown_figures_is_refused():
    report = october()
    rates = tuple(
        PublishedRate(r.key, 99 if r.key == "candidates_of_screened" else r.value)
        for r in report.rates
    )
    breach = disclosure_breach(replace(report, rates=rates))
    assert breach is not None
    assert (breach.rule, breach.cells) == (
        "rate_not_from_shown_figures",
        ("candidates_of_screened",),
    )


def test_a_raw_report_is_not_a_published_one_and_is_not_checked_here():
    raw = publish(build_monthly_report(SITE, OCTOBER, october_2024()), raw=True)
    assert disclosure_breach(raw) is None
