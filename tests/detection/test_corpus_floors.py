"""Detection measured on the evaluation corpus (eval/corpus): floors that a rule change must hold.

The held-out parts are never used while changing rules (see README, Detection). With value
set 2026.3 (rules changed on the dev part only) held_out measures 1.000 / 1.000 and
held_out_2 (written fresh after 2026.2, committed before it was scored) 0.983 / 0.983, so
every part holds the 0.95 the issue asks for, on precision and recall.
"""

from __future__ import annotations

from functools import cache

import pytest

from referral_gateway.domain.evaluation import Evaluation
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.entrypoints.detection_commands import DEFAULT_CORPUS, evaluate_file

FLOORS = {
    # part: (precision, recall)
    "held_out": (0.95, 0.95),  # 2026.2: 0.942 / 1.000; 2026.3: 1.000 / 1.000
    "held_out_2": (0.95, 0.95),  # 2026.2: 0.967 / 0.983; 2026.3: 0.983 / 0.983
    "dev": (0.95, 0.95),
}


@cache
def evaluation_of(part: str) -> Evaluation:
    return evaluate_file(DEFAULT_CORPUS / f"{part}.tsv", bundled_valuesets().latest)


@pytest.mark.parametrize("part", sorted(FLOORS))
def test_latest_value_set_holds_its_precision_and_recall_floors(part: str) -> None:
    evaluation = evaluation_of(part)
    scores = evaluation.overall
    precision_floor, recall_floor = FLOORS[part]
    errors = "\n".join(f"{o.case.id} {o.case.text!r} fired {o.fired}" for o in evaluation.errors)

    assert scores.precision is not None and scores.precision >= precision_floor, errors
    assert scores.recall is not None and scores.recall >= recall_floor, errors


def test_corpus_is_large_enough_spread_over_every_field_and_its_parts_share_no_text() -> None:
    cases = [o.case for part in FLOORS for o in evaluation_of(part).outcomes]

    assert len(cases) >= 400
    assert {c.field for c in cases} == {
        "pv2_3",
        "obx_cc",
        "dg1_desc",
        "nte",
        "fhir_reason",
        "condition_text",
        "fhir_note",
    }

    def texts(part: str) -> set[str]:
        return {o.case.text for o in evaluation_of(part).outcomes if not o.case.codes}

    assert not texts("dev") & texts("held_out")
    assert not texts("held_out_2") & (texts("dev") | texts("held_out"))


def test_evaluation_names_the_decisions_resting_on_unverified_ecds_intent_codes() -> None:
    resting = evaluation_of("held_out").resting_on_unverified

    assert resting
    assert all(
        {r.rule for r in o.detection.reasons if r.kind == "assault"} == {"ecds_intent:52684005"}
        for o in resting
    )


def test_ecds_injury_intent_codes_stay_flagged_unverified_in_the_latest_value_set() -> None:
    latest = bundled_valuesets().latest

    assert latest.assault.ecds_intent
    assert any(note.startswith("UNVERIFIED") and "ECDS" in note for note in latest.notes)
