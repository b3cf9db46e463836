"""Context classes, through the HL7 v2 and FHIR adapters into detection (value set 2026.2 on).

Each text travels in an HL7 message (OBX chief complaint, NTE) or a FHIR Encounter /
Condition (reasonCode.text, Condition.note), read by the adapters the pipeline uses.
The texts are written for these tests and are not in the evaluation corpus.
"""

from __future__ import annotations

import pytest

from referral_gateway.domain.detection import Detection, ReasonKind, detect
from referral_gateway.domain.evaluation import Case, Label
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.entrypoints.detection_commands import SITE, attendance_for

FIELDS = {
    "hl7 OBX chief complaint": "obx_cc",
    "hl7 NTE": "nte",
    "fhir reasonCode.text": "fhir_reason",
    "fhir Condition.note": "fhir_note",
}
fields = pytest.mark.parametrize("field", FIELDS.values(), ids=FIELDS.keys())


def detect_text(text: str, field: str) -> Detection:
    case = Case("t1", field, Label.NOT, None, "test", (), text)
    return detect(attendance_for(case), SITE, bundled_valuesets().latest)


def set_aside_as(detection: Detection) -> str:
    return " ".join(r.description for r in detection.reasons_of(ReasonKind.SET_ASIDE))


@fields
def test_stated_assault_is_a_definite_candidate(field: str) -> None:
    detection = detect_text("punched x2 to face by unknown male outside kebab shop", field)

    assert detection.is_candidate
    assert not detection.possible


@fields
def test_negated_assault_is_not_a_candidate(field: str) -> None:
    detection = detect_text("Fell from ladder cleaning windows. Denies assault.", field)

    assert not detection.is_candidate
    assert detection.reasons_of(ReasonKind.NEGATED)


@fields
def test_query_assault_is_a_possible_candidate_not_nothing(field: str) -> None:
    detection = detect_text("found by friends outside bar with head lac, query assault", field)

    assert detection.is_candidate
    assert detection.possible


@fields
def test_assault_on_someone_else_is_set_aside_as_experiencer(field: str) -> None:
    detection = detect_text("Sister was assaulted at the weekend, pt c/o insomnia", field)

    assert not detection.is_candidate
    assert "experiencer" in set_aside_as(detection)


@fields
def test_old_assault_mentioned_in_passing_is_set_aside_as_historical(field: str) -> None:
    detection = detect_text("PMHx: stabbed 2021, asthma. Today: wheeze", field)

    assert not detection.is_candidate
    assert "historical" in set_aside_as(detection)


@fields
def test_weapon_words_in_an_accident_are_set_aside_as_accidental(field: str) -> None:
    detection = detect_text("accidentally shot in hand with a nail gun by colleague", field)

    assert not detection.is_candidate
    assert "accidental" in set_aside_as(detection)


@fields
def test_a_fight_between_animals_is_set_aside_as_animal(field: str) -> None:
    detection = detect_text("bitten on thumb pulling apart 2 dogs fighting in park", field)

    assert not detection.is_candidate
    assert "animal" in set_aside_as(detection)


@fields
def test_contact_within_a_sport_is_set_aside_as_sport(field: str) -> None:
    detection = detect_text("punched in the face in a rugby scrum", field)

    assert not detection.is_candidate
    assert "sport" in set_aside_as(detection)


@fields
def test_assault_told_through_the_attacker_is_a_candidate(field: str) -> None:
    detection = detect_text("set upon by a group of lads at the station, facial injuries", field)

    assert detection.is_candidate


# -- value set 2026.3: the error classes the dev part held open --------------------------------


@fields
def test_the_patient_as_the_one_hitting_is_set_aside(field: str) -> None:
    detection = detect_text("swollen knuckles from hitting a lad in a fight at the park", field)

    assert not detection.is_candidate
    assert "experiencer: patient_hit_someone" in set_aside_as(detection)


@fields
def test_hurt_in_a_fight_by_the_other_one_is_still_a_candidate(field: str) -> None:
    detection = detect_text("sore hand after a fight, then kicked in ribs by the other male", field)

    assert detection.is_candidate


@fields
def test_sport_contact_told_through_the_players_is_set_aside(field: str) -> None:
    detection = detect_text("went up for a header, kicked in the jaw by the goalie", field)

    assert not detection.is_candidate
    assert "sport: sport_players" in set_aside_as(detection)


@fields
def test_a_feared_stabbing_that_did_not_happen_is_not_a_candidate(field: str) -> None:
    detection = detect_text("frightened he will be stabbed at college, palpitations", field)

    assert not detection.is_candidate
    assert detection.reasons_of(ReasonKind.NEGATED)


@fields
def test_a_suspected_past_stabbing_stays_possible(field: str) -> None:
    detection = detect_text("worried she may have been stabbed with a needle in club", field)

    assert detection.is_candidate and detection.possible


@fields
def test_fighting_off_an_illness_is_not_a_fight(field: str) -> None:
    detection = detect_text("fighting off a nasty throat infection, unable to swallow", field)

    assert not detection.is_candidate


@fields
def test_a_player_who_hits_after_the_match_is_an_assault_not_sport(field: str) -> None:
    detection = detect_text("kicked in the face by an opponent once the game was over", field)

    assert detection.is_candidate
