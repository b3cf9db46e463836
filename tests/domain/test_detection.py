"""Detection of candidate attendances: each gate, each boundary, each kind of signal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from referral_gateway.domain.attendance import AttendanceStatus, Coding
from referral_gateway.domain.detection import (
    DecidingRule,
    Detection,
    InjuryCategory,
    ReasonKind,
    age_on,
    detect,
    local_arrival_date,
)
from tests.domain.builders import (
    ARRIVAL,
    a_site,
    an_attendance,
    bundled,
    ecds,
    icd10,
    snomed,
)

STAB_WOUND = snomed("425322008")
ASSAULT_EVENT = snomed("52684005")
SELF_INFLICTED = snomed("276853009")


def detect_for(**attendance: object) -> Detection:
    return detect(an_attendance(**attendance), a_site(), bundled())  # type: ignore[arg-type]


def rules_of(detection: Detection, kind: ReasonKind) -> set[str]:
    return {reason.rule for reason in detection.reasons_of(kind)}


# --- the happy path -------------------------------------------------------------------------


def test_sixteen_year_old_with_stab_wound_becomes_candidate() -> None:
    detection = detect_for(codings=(STAB_WOUND,))

    assert detection.is_candidate
    assert detection.rule == "assault_signal"
    assert detection.age_at_arrival == 16
    assert detection.injury_category is InjuryCategory.BLADED
    assert rules_of(detection, ReasonKind.ASSAULT) == {"snomed:425322008"}
    assert detection.valueset_version == bundled().version


def test_attendance_without_any_signal_is_not_a_candidate() -> None:
    detection = detect_for(free_text=("fell off bike, wrist pain",))

    assert not detection.is_candidate
    assert detection.rule == DecidingRule.NO_ASSAULT_SIGNAL
    assert detection.injury_category is None


# --- gates ----------------------------------------------------------------------------------


def test_cancelled_attendance_is_not_a_candidate_even_with_assault_code() -> None:
    detection = detect_for(status=AttendanceStatus.CANCELLED, codings=(ASSAULT_EVENT,))

    assert not detection.is_candidate
    assert detection.rule == "cancelled"
    assert rules_of(detection, ReasonKind.GATE) == {"cancelled"}
    assert rules_of(detection, ReasonKind.ASSAULT) == {"snomed:52684005"}


def test_inpatient_class_is_not_an_emergency_attendance() -> None:
    detection = detect_for(patient_class="I", codings=(ASSAULT_EVENT,))

    assert not detection.is_candidate
    assert detection.rule == "not_emergency"


def test_sender_saying_not_emergency_is_refused() -> None:
    detection = detect_for(patient_class=None, is_emergency=False, codings=(ASSAULT_EVENT,))

    assert detection.rule == "not_emergency"


@pytest.mark.parametrize(
    ("patient_class", "is_emergency"),
    [("E", None), ("e", None), ("EMER", None), (None, True), ("O", True)],
)
def test_emergency_class_or_flag_makes_an_emergency_attendance(
    patient_class: str | None, is_emergency: bool | None
) -> None:
    detection = detect_for(
        patient_class=patient_class, is_emergency=is_emergency, codings=(ASSAULT_EVENT,)
    )

    assert detection.is_candidate


@pytest.mark.parametrize("patient_class", [None, "", "  ", "U"])
def test_unknown_patient_class_counts_as_emergency_by_default(patient_class: str | None) -> None:
    detection = detect_for(patient_class=patient_class, codings=(ASSAULT_EVENT,))

    assert detection.is_candidate


def test_unknown_patient_class_is_refused_when_the_site_does_not_assume_emergency() -> None:
    site = a_site(assume_emergency_when_unknown=False)

    detection = detect(an_attendance(patient_class=None, codings=(ASSAULT_EVENT,)), site, bundled())

    assert not detection.is_candidate
    assert detection.rule == "not_emergency"


def test_no_arrival_time_is_refused() -> None:
    detection = detect_for(arrival=None, codings=(ASSAULT_EVENT,))

    assert detection.rule == "no_arrival_time"
    assert detection.age_at_arrival is None


def test_no_birth_date_is_refused() -> None:
    detection = detect_for(birth_date=None, codings=(ASSAULT_EVENT,))

    assert detection.rule == "no_birth_date"
    assert detection.age_at_arrival is None


def test_birth_date_after_arrival_is_implausible() -> None:
    detection = detect_for(birth_date=date(2026, 3, 15), codings=(ASSAULT_EVENT,))

    assert detection.rule == "implausible_birth_date"
    assert detection.age_at_arrival is None


def test_gate_failure_still_records_age_and_signals() -> None:
    detection = detect_for(birth_date=date(1998, 1, 1), codings=(STAB_WOUND,))

    assert detection.rule == "age_out_of_band"
    assert detection.age_at_arrival == 28
    assert rules_of(detection, ReasonKind.ASSAULT) == {"snomed:425322008"}
    assert detection.injury_category is InjuryCategory.BLADED


# --- age boundaries (arrival 14 March 2026, 14:30 GMT) ----------------------------------------


def test_eleventh_birthday_on_the_day_of_arrival_is_in_band() -> None:
    detection = detect_for(birth_date=date(2015, 3, 14), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 11
    assert detection.is_candidate


def test_day_before_eleventh_birthday_is_out_of_band() -> None:
    detection = detect_for(birth_date=date(2015, 3, 15), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 10
    assert detection.rule == "age_out_of_band"


def test_day_before_twenty_sixth_birthday_is_in_band() -> None:
    detection = detect_for(birth_date=date(2000, 3, 15), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 25
    assert detection.is_candidate


def test_twenty_sixth_birthday_is_out_of_band() -> None:
    detection = detect_for(birth_date=date(2000, 3, 14), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 26
    assert detection.rule == "age_out_of_band"


def test_site_band_replaces_the_default_band() -> None:
    site = a_site(min_age=14, max_age=18)
    thirteen = an_attendance(birth_date=date(2012, 6, 1), codings=(ASSAULT_EVENT,))
    eighteen = an_attendance(birth_date=date(2007, 6, 1), codings=(ASSAULT_EVENT,))

    assert detect(thirteen, site, bundled()).rule == "age_out_of_band"
    assert detect(eighteen, site, bundled()).is_candidate


def test_arrival_just_after_midnight_bst_is_the_next_day_in_london() -> None:
    # 23:30 UTC on 14 June is 00:30 BST on 15 June: the 26th birthday, so out of band.
    arrival = datetime(2026, 6, 14, 23, 30, tzinfo=UTC)

    detection = detect_for(arrival=arrival, birth_date=date(2000, 6, 15), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 26
    assert detection.rule == "age_out_of_band"


def test_arrival_at_the_same_utc_time_in_winter_stays_on_the_same_day() -> None:
    # 23:30 UTC on 14 January is 23:30 GMT on 14 January: still 25.
    arrival = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)

    detection = detect_for(arrival=arrival, birth_date=date(2000, 1, 15), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 25
    assert detection.is_candidate


def test_naive_arrival_is_read_as_london_wall_clock_time() -> None:
    arrival = datetime(2026, 6, 15, 0, 30)  # HL7 TS without an offset

    detection = detect_for(arrival=arrival, birth_date=date(2000, 6, 15), codings=(ASSAULT_EVENT,))

    assert detection.age_at_arrival == 26


def test_arrival_with_an_offset_is_converted_to_london() -> None:
    plus_two = timezone(timedelta(hours=2))
    # 01:30 at +02:00 on 15 June is 23:30 UTC on 14 June, which is 00:30 BST on 15 June.
    assert local_arrival_date(datetime(2026, 6, 15, 1, 30, tzinfo=plus_two)) == date(2026, 6, 15)
    # 00:30 at +02:00 on 15 June is 22:30 UTC on 14 June, which is 23:30 BST on 14 June.
    assert local_arrival_date(datetime(2026, 6, 15, 0, 30, tzinfo=plus_two)) == date(2026, 6, 14)


def test_birthday_on_the_day_counts_as_the_new_age() -> None:
    assert age_on(date(2010, 5, 20), date(2026, 5, 20)) == 16
    assert age_on(date(2010, 5, 20), date(2026, 5, 19)) == 15


def test_leap_day_birthday_is_reached_on_first_of_march_in_other_years() -> None:
    born = date(2008, 2, 29)

    assert age_on(born, date(2026, 2, 28)) == 17
    assert age_on(born, date(2026, 3, 1)) == 18
    assert age_on(born, date(2028, 2, 29)) == 20


def test_age_before_birth_is_an_error() -> None:
    with pytest.raises(ValueError, match="before the date of birth"):
        age_on(date(2010, 1, 2), date(2010, 1, 1))


# --- coded signals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "rule", "category"),
    [
        (snomed("52684005"), "snomed:52684005", InjuryCategory.OTHER),
        (snomed("425322008"), "snomed:425322008", InjuryCategory.BLADED),
        (snomed("283545005"), "snomed:283545005", InjuryCategory.FIREARM),
        (snomed("262574004"), "snomed:262574004", InjuryCategory.FIREARM),
        (snomed("248110007"), "snomed:248110007", InjuryCategory.SEXUAL),
        (icd10("X99"), "icd10:X99", InjuryCategory.BLADED),
        (icd10("X99.0"), "icd10:X99.0", InjuryCategory.BLADED),
        (icd10("X990"), "icd10:X99.0", InjuryCategory.BLADED),
        (icd10("x99.0"), "icd10:X99.0", InjuryCategory.BLADED),
        (icd10("X93"), "icd10:X93", InjuryCategory.FIREARM),
        (icd10("X95.9"), "icd10:X95.9", InjuryCategory.FIREARM),
        (icd10("Y04"), "icd10:Y04", InjuryCategory.BODY_PART),
        (icd10("Y05"), "icd10:Y05", InjuryCategory.SEXUAL),
        (icd10("T74.2"), "icd10:T74.2", InjuryCategory.SEXUAL),
        (icd10("T742"), "icd10:T74.2", InjuryCategory.SEXUAL),
        (icd10("Y00"), "icd10:Y00", InjuryCategory.OTHER),
        (ecds("52684005"), "ecds_intent:52684005", InjuryCategory.OTHER),
    ],
)
def test_listed_code_is_an_assault_signal_with_its_category(
    coding: Coding, rule: str, category: InjuryCategory
) -> None:
    detection = detect_for(codings=(coding,))

    assert detection.is_candidate
    assert rules_of(detection, ReasonKind.ASSAULT) == {rule}
    assert detection.injury_category is category


def test_x84_is_self_harm_not_assault() -> None:
    assert detect_for(codings=(icd10("X84"),)).rule == "self_harm_only"


def test_x85_is_the_first_assault_code() -> None:
    assert detect_for(codings=(icd10("X85"),)).is_candidate


def test_y09_is_the_last_assault_code() -> None:
    assert detect_for(codings=(icd10("Y09"),)).is_candidate
    assert detect_for(codings=(icd10("Y09.9"),)).is_candidate


def test_y10_is_past_the_assault_block() -> None:
    assert detect_for(codings=(icd10("Y10"),)).rule == "no_assault_signal"


def test_t74_without_the_sexual_abuse_subdivision_is_not_a_signal() -> None:
    assert detect_for(codings=(icd10("T74.1"),)).rule == "no_assault_signal"
    assert detect_for(codings=(icd10("T74"),)).rule == "no_assault_signal"


@pytest.mark.parametrize(
    "system", ["SCT", "SNOMED CT", "http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"]
)
def test_sender_spellings_of_snomed_are_understood(system: str) -> None:
    assert detect_for(codings=(Coding(system, "425322008"),)).is_candidate


@pytest.mark.parametrize("system", ["I10", "ICD10", "ICD-10", "http://hl7.org/fhir/sid/icd-10"])
def test_sender_spellings_of_icd10_are_understood(system: str) -> None:
    assert detect_for(codings=(Coding(system, "X99.1"),)).is_candidate


def test_code_in_an_unknown_system_is_not_a_signal() -> None:
    detection = detect_for(codings=(Coding("LOCAL", "425322008"), Coding("99ZZ", "X99")))

    assert detection.rule == "no_assault_signal"


def test_display_of_a_local_code_is_read_as_free_text() -> None:
    detection = detect_for(codings=(Coding("LOCAL", "A12", "Stab wound chest"),))

    assert rules_of(detection, ReasonKind.ASSAULT) == {"text:stab_wound"}


def test_display_of_a_standard_code_is_not_read_as_free_text() -> None:
    # W50 is accidental contact with another person: its display reads like an assault.
    accidental = icd10("W50", "Hit, struck, kicked, twisted, bitten or scratched by another person")

    assert detect_for(codings=(accidental,)).rule == "no_assault_signal"


# --- free text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule", "category"),
    [
        ("stabbed in left thigh", "text:stabbed", InjuryCategory.BLADED),
        ("stab wound to abdomen", "text:stab_wound", InjuryCategory.BLADED),
        ("knife wound to hand", "text:knife_wound", InjuryCategory.BLADED),
        ("slashed across forearm", "text:slashed", InjuryCategory.BLADED),
        ("glassed in pub", "text:glassed", InjuryCategory.BLADED),
        ("assaulted by 3 males", "text:assaulted", InjuryCategory.OTHER),
        ("alleged assault", "text:assault", InjuryCategory.OTHER),
        ("attacked on way home", "text:attacked", InjuryCategory.OTHER),
        ("punched in face", "text:punched", InjuryCategory.BODY_PART),
        ("kicked in head whilst on floor", "text:kicked", InjuryCategory.BODY_PART),
        ("beaten up outside shop", "text:beaten_up", InjuryCategory.BODY_PART),
        ("GSW right leg", "text:gsw", InjuryCategory.FIREARM),
        ("gsw right leg", "text:gsw", InjuryCategory.FIREARM),
        ("gunshot wound", "text:gunshot", InjuryCategory.FIREARM),
        ("shot in leg", "text:shot", InjuryCategory.FIREARM),
        ("shotgun pellets to back", "text:shotgun", InjuryCategory.FIREARM),
        ("disclosed sexual assault", "text:sexual_assault", InjuryCategory.SEXUAL),
        ("states was raped", "text:raped", InjuryCategory.SEXUAL),
        ("county lines concerns", "text:county_lines", InjuryCategory.EXPLOITATION),
    ],
)
def test_free_text_phrase_is_an_assault_signal(
    text: str, rule: str, category: InjuryCategory
) -> None:
    detection = detect_for(free_text=(text,))

    assert detection.is_candidate
    assert rule in rules_of(detection, ReasonKind.ASSAULT)
    assert detection.injury_category is category


@pytest.mark.parametrize(
    "text",
    [
        "kicked by a horse at stables",
        "kicked in the head by horse",
        "kicked playing football",
        "kicked in shin at football training",
        "kicked a door in anger",
        "punched a wall",
        "punched the door",
        "flu shot given",
        "tetanus shot given",
        "shot put injury",
        "attacked by neighbours dog",
        "panic attack",
        "assault course injury at school",
        "fight or flight response",
        "stabbing pain in chest",
    ],
)
def test_look_alike_phrase_is_not_an_assault_signal(text: str) -> None:
    assert detect_for(free_text=(text,)).rule == "no_assault_signal"


def test_shot_is_a_whole_word_so_shotgun_is_its_own_term() -> None:
    detection = detect_for(free_text=("shotgun injury",))

    assert rules_of(detection, ReasonKind.ASSAULT) == {"text:shotgun"}


@pytest.mark.parametrize(
    "text",
    [
        "denies assault",
        "Denies being assaulted",
        "no assault",
        "not assaulted",
        "wasn't assaulted, fell",
        "no evidence of assault",
        "no clear evidence of being sexually assaulted",
        "assault denied",
        "assault ruled out by police",
        "negative for assault",
    ],
)
def test_negated_assault_phrase_does_not_count(text: str) -> None:
    detection = detect_for(free_text=(text,))

    assert not detection.is_candidate
    assert detection.rule == "no_assault_signal"
    assert detection.reasons_of(ReasonKind.NEGATED)


@pytest.mark.parametrize(
    "text",
    [
        "?assault",
        "? assault",
        "query assault",
        "possible assault",
        "assault not ruled out",
        "cannot exclude assault",
        "not sure if assaulted",
        "no LOC after assault",
        "no LOC, assaulted",
        "no weapon used punched to face",
        "denies knowing who assaulted him",
        "previously well, assaulted tonight",
        "denies drugs. assaulted",
        "kicked in head after football match by rival fans",
    ],
)
def test_suspected_or_unnegated_assault_phrase_counts(text: str) -> None:
    assert detect_for(free_text=(text,)).is_candidate


def test_one_unnegated_mention_counts_even_if_another_is_negated() -> None:
    detection = detect_for(free_text=("initially denied assault", "later disclosed: assaulted"))

    assert detection.is_candidate


def test_reasons_never_quote_the_patients_words() -> None:
    note = "Jordan Example was stabbed outside 12 Fakename Road by a known male"

    detection = detect_for(free_text=(note,))

    assert detection.is_candidate
    for reason in detection.reasons:
        assert "Jordan" not in reason.description
        assert "Fakename" not in reason.description
        assert "known male" not in reason.description


# --- self-harm ------------------------------------------------------------------------------


def test_self_harm_code_alone_is_self_harm_only() -> None:
    detection = detect_for(codings=(SELF_INFLICTED,))

    assert not detection.is_candidate
    assert detection.rule == "self_harm_only"
    assert rules_of(detection, ReasonKind.SELF_HARM) == {"snomed:276853009"}


def test_stab_wound_with_self_harm_code_is_self_harm_only() -> None:
    detection = detect_for(codings=(STAB_WOUND, SELF_INFLICTED))

    assert detection.rule == "self_harm_only"
    assert rules_of(detection, ReasonKind.DISCOUNTED) == {"snomed:425322008"}
    assert detection.injury_category is None


def test_self_harm_icd10_discounts_implied_free_text() -> None:
    detection = detect_for(codings=(icd10("X78"),), free_text=("stab wound L forearm",))

    assert detection.rule == "self_harm_only"


def test_stabbed_himself_is_self_harm_not_assault() -> None:
    detection = detect_for(free_text=("stabbed himself in the thigh",))

    assert detection.rule == "self_harm_only"
    assert not detection.reasons_of(ReasonKind.ASSAULT)


def test_stab_wound_described_as_self_inflicted_is_self_harm_only() -> None:
    assert detect_for(free_text=("stab wound, self-inflicted",)).rule == "self_harm_only"


def test_explicit_assault_with_self_harm_is_still_a_candidate() -> None:
    detection = detect_for(codings=(SELF_INFLICTED,), free_text=("assaulted by ex-partner",))

    assert detection.is_candidate
    assert detection.rule == "assault_signal"
    assert rules_of(detection, ReasonKind.ASSAULT) == {"text:assaulted"}
    assert rules_of(detection, ReasonKind.SELF_HARM) == {"snomed:276853009"}


def test_assault_intent_code_with_self_harm_diagnosis_is_a_candidate() -> None:
    detection = detect_for(codings=(icd10("X99"), icd10("X78")))

    assert detection.is_candidate
    assert detection.injury_category is InjuryCategory.BLADED


def test_negated_self_harm_does_not_discount_a_stab_wound() -> None:
    detection = detect_for(free_text=("denies self harm", "stab wound to back"))

    assert detection.is_candidate
    assert "text:self_harm" in rules_of(detection, ReasonKind.NEGATED)


# --- injury category precedence ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("codings", "text", "category"),
    [
        ((STAB_WOUND, snomed("248110007")), (), InjuryCategory.SEXUAL),
        ((STAB_WOUND, snomed("283545005")), (), InjuryCategory.FIREARM),
        ((), ("punched then stabbed",), InjuryCategory.BLADED),
        ((), ("county lines, punched",), InjuryCategory.EXPLOITATION),
        ((ASSAULT_EVENT,), ("kicked",), InjuryCategory.BODY_PART),
        ((), ("sexually assaulted",), InjuryCategory.SEXUAL),
    ],
)
def test_most_specific_category_wins(
    codings: tuple[Coding, ...], text: tuple[str, ...], category: InjuryCategory
) -> None:
    assert detect_for(codings=codings, free_text=text).injury_category is category


def test_detection_records_the_value_set_version_it_used() -> None:
    detection = detect_for(codings=(ASSAULT_EVENT,))

    assert detection.valueset_version == "2026.3"


def test_arrival_default_is_a_winter_afternoon() -> None:
    # Guards the builder: the boundary tests above assume GMT on 14 March 2026.
    assert local_arrival_date(ARRIVAL) == date(2026, 3, 14)
