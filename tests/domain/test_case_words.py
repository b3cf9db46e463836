"""The case page's words: detection reasons as a youth worker reads them (from the reasons
detection itself stores), NHS numbers spaced 3 3 4, and phone numbers a phone can dial."""

from __future__ import annotations

from dataclasses import asdict

from referral_gateway.domain.detection import Detection, detect
from referral_gateway.domain.manual import MANUAL_RULE
from referral_gateway.domain.nhs_number import spaced_nhs_number
from referral_gateway.domain.phone_numbers import dial_string
from referral_gateway.domain.reason_words import plain_reason, plain_reasons
from tests.domain.builders import a_site, an_attendance, bundled, icd10, snomed


def stored(detection: Detection) -> list[dict[str, str]]:
    """The reasons as the referral row keeps them."""
    return [{k: str(v) for k, v in asdict(reason).items()} for reason in detection.reasons]


def words_for(**attendance: object) -> list[str]:
    detection = detect(an_attendance(**attendance), a_site(), bundled())  # type: ignore[arg-type]
    assert detection.is_candidate, detection
    return plain_reasons(stored(detection))


def test_a_triage_note_word_is_quoted_as_the_note_says_it():
    assert words_for(free_text=("punched to face by unknown male",)) == [
        "the triage note says 'punched'",
        "the triage note says 'injured by another person'",
    ]


def test_an_icd10_diagnosis_names_its_code_and_what_it_means():
    assert words_for(codings=(icd10("X99"),)) == [
        "the diagnosis code X99 (assault by sharp object)"
    ]


def test_a_snomed_code_reads_without_its_semantic_tag():
    assert words_for(codings=(snomed("425322008"),)) == [
        "the ED coded it as stab wound (SNOMED CT 425322008)"
    ]


def test_a_suspected_assault_says_it_is_only_possible():
    (words,) = words_for(free_text=("head lac, found in street ?assault",))
    assert words.startswith("the triage note says 'assault', as a possible assault")


def test_negated_and_set_aside_phrases_are_not_given_as_reasons():
    reasons = stored(
        detect(an_attendance(free_text=("denies assault", "stabbed in thigh")), a_site(), bundled())
    )
    assert plain_reasons(reasons) == ["the triage note says 'stabbed'"]


def test_a_manual_referral_and_an_unknown_rule_read_as_stored():
    assert (
        plain_reason(MANUAL_RULE, "Referred by ED staff: exploitation concern")
        == "referred by ED staff: exploitation concern"
    )
    assert plain_reason("future:thing", "Some new rule") == "Some new rule"
    assert plain_reasons([], fallback="assault_signal") == ["assault_signal"]


def test_nhs_numbers_are_spaced_three_three_four():
    assert spaced_nhs_number("9990000026") == "999 000 0026"
    assert spaced_nhs_number("999-000-0026") == "999 000 0026"
    assert spaced_nhs_number("12345") == "12345"  # not ten digits: as stored
    assert spaced_nhs_number(None) == ""


def test_phone_numbers_become_what_a_phone_dials():
    assert dial_string("07700 900123") == "07700900123"
    assert dial_string("+44 (0)7700 900123") == "+447700900123"
    assert dial_string("(01632) 960-001") == "01632960001"
    assert dial_string("ring mum") is None
    assert dial_string("") is None
