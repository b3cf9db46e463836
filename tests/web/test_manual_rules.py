"""The manual referral form's rules: what a clinician-identified young person needs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from referral_gateway.domain.casework import CaseRefusal
from referral_gateway.domain.manual import check_manual_referral, manual_warnings, unlikely_uk_phone
from referral_gateway.domain.sites import SiteRules
from referral_gateway.domain.valuesets import InjuryCategory
from tests.web.builders import SITE_A, SITE_B, T0, user

ASH = user()

# an exploitation concern with no injury: what the feed cannot catch
FORM = {
    "site": SITE_A,
    "ed_area": "Paeds ED",
    "bay": "3",
    "sex": "female",
    "concern": "exploitation",
    "concern_detail": "Older men collecting her from school; new phone; missing episodes",
    "referrer": "Dr Example, ED registrar",
    "given_names": "Casey",
    "family_name": "Sampleford",
    "nhs_number": "999 000 1235",
}


def check(fields: dict[str, str], **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("arrival", T0 - timedelta(hours=1))
    kwargs.setdefault("birth_date", date(2011, 6, 1))
    return check_manual_referral(ASH, fields, now=T0, today=T0.date(), **kwargs)


def test_an_exploitation_concern_without_an_injury_code_becomes_a_referral():
    result = check(FORM)
    assert not isinstance(result, CaseRefusal), result
    assert result.concern is InjuryCategory.EXPLOITATION
    assert result.age_at_arrival == 14
    assert result.attendance.patient.nhs_number == "9990001235"
    assert result.nhs_number_valid is True
    assert result.attendance.location.area == "Paeds ED"
    assert any("Dr Example" in text for text in result.attendance.free_text)


def test_an_age_is_enough_when_the_date_of_birth_is_not_known():
    result = check(FORM | {"age": "15"}, birth_date=None)
    assert not isinstance(result, CaseRefusal) and result.age_at_arrival == 15


def test_without_age_or_date_of_birth_the_form_says_what_to_enter():
    result = check(FORM, birth_date=None)
    assert isinstance(result, CaseRefusal)
    assert "date of birth" in result.problems["age"]


def test_an_invalid_nhs_number_is_flagged_not_refused():
    result = check(FORM | {"nhs_number": "9990001236"})
    assert not isinstance(result, CaseRefusal)
    assert result.nhs_number_valid is False
    assert "invalid_nhs_number" in result.attendance.flags


def test_another_sites_referral_a_future_arrival_and_no_concern_are_refused():
    result = check(
        FORM | {"site": SITE_B, "concern": "", "referrer": ""}, arrival=T0 + timedelta(hours=2)
    )
    assert isinstance(result, CaseRefusal)
    assert set(result.problems) == {"site", "concern", "referrer", "arrival"}


@pytest.mark.parametrize(
    ("phone", "unlikely"),
    [
        ("07700 900123", False),
        ("+44 7700 900123", False),
        ("+44 (0)20 7946 0958", False),
        ("020-7946-0958", False),
        ("12345", True),
        ("0770090012345", True),
        ("+33 6 12 34 56 78", True),
    ],
)
def test_a_phone_number_is_unlikely_unless_a_uk_phone_dials_it(phone: str, unlikely: bool):
    assert unlikely_uk_phone(phone) is unlikely


def test_warnings_name_the_age_band_a_bad_check_digit_and_an_unlikely_phone():
    fields = {
        "site": SITE_A,
        "concern": "exploitation",
        "age": "9",
        "referrer": "ED nurse",
        "nhs_number": "999 000 1236",
        "phone": "12345",
    }
    manual = check(fields, birth_date=None)
    assert not isinstance(manual, CaseRefusal)
    warned = manual_warnings(manual, SiteRules(SITE_A, SITE_A, min_age=11, max_age=25))
    assert set(warned) == {"age", "nhs_number", "phone"} and "11 to 25" in warned["age"]
    usual = check(
        fields | {"age": "12", "nhs_number": "9990001235", "phone": "07700 900123"},
        birth_date=None,
    )
    assert manual_warnings(usual, SiteRules(SITE_A, SITE_A)) == {}  # type: ignore[arg-type]
