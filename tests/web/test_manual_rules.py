"""The manual referral form's rules: what a clinician-identified young person needs."""

from __future__ import annotations

from datetime import date, timedelta

from referral_gateway.domain.casework import CaseRefusal
from referral_gateway.domain.manual import check_manual_referral
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
