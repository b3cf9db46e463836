"""Files and charts made from published reports."""

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from referral_gateway.domain.istv import istv_rows
from referral_gateway.domain.report_facts import AssaultDetail, InjuryCategory, ReportFacts
from referral_gateway.domain.report_period import ReportMonth, trailing_months
from referral_gateway.domain.report_published import (
    PublishedReport,
    cross_site_totals,
    publish,
)
from referral_gateway.domain.reporting import build_monthly_report
from referral_gateway.report_formats.charts import (
    funnel_stages,
    funnel_svg,
    trend_series,
    trend_svg,
)
from referral_gateway.report_formats.files import istv_csv, reports_csv, reports_json, totals_csv
from tests.reporting.builders import OTHER_SITE, SITE, at, many, october_2024

OCTOBER = ReportMonth(2024, 10)


def published(site=SITE, facts=None):
    return publish(build_monthly_report(site, OCTOBER, october_2024() if facts is None else facts))


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark for Excel
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_has_one_row_per_figure_with_iso_dates_and_stars():
    data = reports_csv([published()])
    assert b"\r\n" in data
    rows = read_csv(data)
    candidates = next(r for r in rows if r["measure"] == "candidates" and not r["breakdown"])
    assert candidates["value"] == "40"
    assert (candidates["period_start"], candidates["period_end"]) == ("2024-10-01", "2024-10-31")
    firearm = next(r for r in rows if r["category"] == "firearm" and r["measure"] == "candidates")
    assert firearm["value"] == "*"
    median = next(r for r in rows if r["measure"] == "arrival_to_approach_median")
    assert (median["unit"], median["value"]) == ("minutes", "30")


def test_csv_categories_never_look_like_dates_to_excel():
    rows = read_csv(reports_csv([published()]))
    ages = [r["category"] for r in rows if r["breakdown"] == "age_band"]
    assert "10_to_15" in ages
    assert not any("-" in a or "/" in a for a in ages)


def test_csv_defuses_text_that_excel_would_run_as_a_formula():
    facts = many(8, at("2024-10-02T10:00"), onward_referrals=("=HYPERLINK(1)",))
    rows = read_csv(reports_csv([published(facts=facts)]))
    assert any(r["category"] == "'=HYPERLINK(1)" for r in rows)


def test_json_reads_back_into_the_same_report():
    rep = published()
    data = json.loads(reports_json([rep], generated_at=datetime(2024, 11, 1, tzinfo=UTC)))
    back = PublishedReport.from_dict(data["reports"][0])
    assert back.values() == rep.values()
    assert back.approach_times == rep.approach_times


def test_cross_site_totals_add_shown_figures_and_count_hidden_ones():
    a = published()
    b = published(OTHER_SITE, many(9, at("2024-10-03T10:00"), site=OTHER_SITE))
    totals = {str(t.cell): t for t in cross_site_totals([a, b])}
    assert (totals["candidates"].known, totals["candidates"].suppressed_sites) == (50, 0)
    firearm = totals["candidates/injury/firearm"]  # * at RXX01, 0 at RYY02
    assert (firearm.known, firearm.suppressed_sites, firearm.display()) == (0, 1, "0 + 1 x *")
    rows = read_csv(totals_csv("2024-10", list(totals.values())))
    assert rows[0]["known_total"] == "510"  # screened: 500 + 9 rounded to 10


def test_the_trend_chart_breaks_the_line_at_a_suppressed_month():
    months = trailing_months(OCTOBER, 3)
    reports = [
        None,  # no report for August
        publish(build_monthly_report(SITE, months[1], many(3, at("2024-09-02T10:00")))),
        published(),
    ]
    series = trend_series(reports)
    assert series["candidates"] == [None, "*", 40]
    svg = trend_svg("Candidates", months, series)
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == "Candidates"
    assert "suppressed (1 to 7)" in svg
    assert "2024-09: *" in root.find(f"{ns}desc").text


def test_the_funnel_shows_each_stage_and_never_plots_a_suppressed_one():
    rep = published()
    svg = funnel_svg("Funnel", funnel_stages(rep))
    ET.fromstring(svg)
    assert ">40<" in svg  # candidates bar label
    assert "Signposted" in svg and "* (suppressed)" in svg  # 3 signposted


def test_istv_rows_carry_times_and_places_but_no_identifiers():
    facts = [
        # 00:30 BST on 1 Oct: local date is 1 Oct
        ReportFacts(
            site=SITE,
            arrival=at("2024-09-30T23:30"),
            age_at_arrival=40,
            assault=True,
            injury_category=InjuryCategory.BODY_PART,
            assault_detail=AssaultDetail(
                assault_at=at("2024-09-30T22:45"),
                location_type="licensed premises",
                location_description="outside  the\nRed Lion, High St",
            ),
        ),
        # a young person's candidate attendance, nothing known of the assault itself
        *many(1, at("2024-10-10T14:05"), injury_category=InjuryCategory.BLADED),
        # not an assault: left out
        ReportFacts(site=SITE, arrival=at("2024-10-11T10:00"), age_at_arrival=30),
    ]
    rows = istv_rows(facts, SITE, OCTOBER)
    assert [
        (r.arrival_date, r.arrival_time, r.assault_date, r.assault_time, r.method) for r in rows
    ] == [
        ("2024-10-01", "00:30", "2024-09-30", "23:45", "body_part"),
        ("2024-10-10", "15:05", "", "", "bladed"),
    ]
    assert rows[0].location_description == "outside the Red Lion, High St"
    parsed = read_csv(istv_csv(rows))
    assert list(parsed[0]) == [
        "arrival_date",
        "arrival_time",
        "assault_date",
        "assault_time",
        "method",
        "location_type",
        "location_description",
    ]


def test_csv_tells_possible_from_definite_candidates_suppressed_alike():
    facts = [*many(12, at("2024-10-02T10:00")), *many(3, at("2024-10-10T10:00"), possible=True)]
    rows = read_csv(reports_csv([published(facts=facts)]))
    by_certainty = {
        r["category"]: r["value"]
        for r in rows
        if r["measure"] == "candidates" and r["breakdown"] == "certainty"
    }
    assert by_certainty == {"definite": "*", "possible": "*"}  # 12 would give the 3 away
