from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from consent.errors import ConsentHistoryError, InvalidInputError
from consent.records import (
    BasisKind,
    ConsentGiver,
    ConsentOutcome,
    ConsentProposal,
    ConsentRecord,
    NotApproachedReason,
    Refusal,
    current_basis,
    latest_record,
    record_consent,
)
from tests.consent.builders import (
    REFERRAL,
    T0,
    WORKER,
    declined,
    given_by_gillick_competent,
    given_by_parent,
    given_by_young_person,
    history_of,
    not_approached,
    override,
    proposal,
    withdrawn,
)

LATER = T0 + timedelta(hours=2)


def recorded(result: ConsentRecord | Refusal) -> ConsentRecord:
    assert isinstance(result, ConsentRecord), getattr(result, "problems", result)
    return result


def refused(result: ConsentRecord | Refusal) -> dict[str, str]:
    assert isinstance(result, Refusal), f"expected a refusal, got {result!r}"
    return dict(result.problems)


# -- who may give consent ----------------------------------------------------------------------


def test_sixteen_year_old_gives_consent_for_themselves() -> None:
    record = recorded(record_consent([], given_by_young_person(age=16), now=T0))

    assert record.outcome is ConsentOutcome.GIVEN
    assert record.giver is ConsentGiver.YOUNG_PERSON_16_PLUS
    assert record.young_person_age == 16
    assert record.recorded_by == WORKER
    assert record.recorded_at == T0
    assert record.seq == 1 and record.supersedes is None


def test_fifteen_year_old_cannot_consent_as_sixteen_plus() -> None:
    problems = refused(record_consent([], given_by_young_person(age=15), now=T0))

    assert set(problems) == {"giver"}
    assert "Gillick" in problems["giver"]


def test_gillick_competent_fourteen_year_old_consents_with_an_assessment_note() -> None:
    record = recorded(record_consent([], given_by_gillick_competent(age=14), now=T0))

    assert record.giver is ConsentGiver.GILLICK_COMPETENT_UNDER_16
    assert record.gillick_assessment is not None
    assert record.gillick_assessment.startswith("Assessed by the youth worker")


@pytest.mark.parametrize("note", [None, "", "   "])
def test_gillick_consent_without_an_assessment_note_is_refused(note: str | None) -> None:
    problems = refused(
        record_consent([], given_by_gillick_competent(age=13, gillick_assessment=note), now=T0)
    )

    assert set(problems) == {"gillick_assessment"}
    assert "who assessed" in problems["gillick_assessment"]


def test_gillick_option_is_refused_for_a_sixteen_year_old() -> None:
    problems = refused(record_consent([], given_by_gillick_competent(age=16), now=T0))

    assert "consents for themselves" in problems["giver"]


def test_parent_consents_for_a_twelve_year_old() -> None:
    record = recorded(record_consent([], given_by_parent(age=12), now=T0))

    assert record.giver is ConsentGiver.PARENT_GUARDIAN
    assert record.gillick_assessment is None


def test_parent_may_consent_for_a_seventeen_year_old() -> None:
    recorded(record_consent([], given_by_parent(age=17), now=T0))


def test_parent_cannot_consent_for_an_eighteen_year_old() -> None:
    problems = refused(record_consent([], given_by_parent(age=18), now=T0))

    assert "18 or over" in problems["giver"]


def test_consent_without_giver_or_age_asks_for_both() -> None:
    problems = refused(record_consent([], proposal(ConsentOutcome.GIVEN), now=T0))

    assert problems == {
        "young_person_age": "Enter the young person's age in years.",
        "giver": "Choose who gave consent.",
    }


@pytest.mark.parametrize("age", [-1, 121])
def test_an_impossible_age_is_refused(age: int) -> None:
    problems = refused(record_consent([], given_by_young_person(age=age), now=T0))

    assert set(problems) == {"young_person_age"}


# -- declined, not approached ------------------------------------------------------------------


def test_declined_is_recorded_and_opens_no_basis() -> None:
    history = history_of(declined())

    assert history[0].outcome is ConsentOutcome.DECLINED
    assert current_basis(history) is None


def test_not_approached_needs_a_reason() -> None:
    problems = refused(record_consent([], not_approached(reason=None), now=T0))  # type: ignore[arg-type]

    assert problems == {"not_approached_reason": "Choose why the young person was not approached."}


def test_not_approached_for_another_reason_needs_the_detail() -> None:
    problems = refused(record_consent([], not_approached(NotApproachedReason.OTHER), now=T0))

    assert problems == {"not_approached_detail": "Say why the young person was not approached."}


def test_not_approached_for_another_reason_keeps_the_detail() -> None:
    record = recorded(
        record_consent(
            [],
            not_approached(NotApproachedReason.OTHER, not_approached_detail=" Left with family "),
            now=T0,
        )
    )

    assert record.not_approached_reason is NotApproachedReason.OTHER
    assert record.not_approached_detail == "Left with family"


@pytest.mark.parametrize(
    "reason",
    [r for r in NotApproachedReason if r is not NotApproachedReason.OTHER],
)
def test_not_approached_for_a_listed_reason_needs_no_detail(reason: NotApproachedReason) -> None:
    record = recorded(
        record_consent([], not_approached(reason, not_approached_detail="typed anyway"), now=T0)
    )

    assert record.not_approached_reason is reason
    assert record.not_approached_detail is None  # not stored: it does not belong


# -- safeguarding override ---------------------------------------------------------------------


def test_override_without_reason_authoriser_or_time_is_refused_with_readable_messages() -> None:
    bare = override(override_reason=" ", authoriser_name=None, authoriser_role="", override_at=None)

    problems = refused(record_consent([], bare, now=T0))

    assert problems == {
        "override_reason": "Enter the safeguarding reason for sharing without consent.",
        "authoriser_name": "Enter the name of the person who authorised the override.",
        "authoriser_role": "Enter the role of the person who authorised the override.",
        "override_at": "Enter when the override was authorised.",
    }


def test_override_without_a_reason_alone_names_only_the_reason() -> None:
    problems = refused(record_consent([], override(override_reason=None), now=T0))

    assert list(problems) == ["override_reason"]


def test_override_authorised_in_the_future_is_refused() -> None:
    problems = refused(record_consent([], override(override_at=T0 + timedelta(minutes=5)), now=T0))

    assert set(problems) == {"override_at"}


def test_override_with_reason_authoriser_and_time_opens_a_basis() -> None:
    history = history_of(declined(), override(override_at=T0 + timedelta(minutes=5)))

    basis = current_basis(history)

    assert basis is not None
    assert basis.kind is BasisKind.SAFEGUARDING_OVERRIDE
    assert basis.record.authoriser_name == "Duty Safeguarding Lead"
    assert basis.record.override_at == T0 + timedelta(minutes=5)


def test_an_override_can_be_renewed_by_a_new_override() -> None:
    history = history_of(override(), override(authoriser_name="Another Lead"))

    basis = current_basis(history)

    assert basis is not None and basis.record.seq == 2


def test_an_override_is_refused_while_consent_is_given() -> None:
    history = history_of(given_by_young_person())

    problems = refused(record_consent(history, override(), now=LATER))

    assert "already given" in problems["outcome"]


# -- withdrawal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [(), (declined(),), (not_approached(),), (given_by_young_person(), withdrawn())],
    ids=["no record", "declined", "not approached", "already withdrawn"],
)
def test_withdrawal_without_consent_or_override_in_force_is_refused(
    before: tuple[ConsentProposal, ...],
) -> None:
    history = history_of(*before)

    problems = refused(record_consent(history, withdrawn(), now=LATER))

    assert problems == {
        "outcome": "Consent can be withdrawn only after it was given or a safeguarding "
        "override was recorded."
    }


def test_withdrawal_after_given_consent_locks_identifiable_data_again() -> None:
    history = history_of(given_by_young_person())
    assert current_basis(history) is not None

    history.append(recorded(record_consent(history, withdrawn(), now=LATER)))

    assert current_basis(history) is None


def test_withdrawal_ends_a_safeguarding_override() -> None:
    history = history_of(override(), withdrawn())

    assert current_basis(history) is None


def test_consent_can_be_given_again_after_a_withdrawal() -> None:
    history = history_of(given_by_young_person(), withdrawn(), given_by_young_person())

    basis = current_basis(history)

    assert basis is not None and basis.record.seq == 3


def test_declining_after_giving_consent_asks_for_a_withdrawal_instead() -> None:
    history = history_of(given_by_young_person())

    problems = refused(record_consent(history, declined(), now=LATER))

    assert "record a withdrawal" in problems["outcome"]


def test_declining_under_an_override_asks_for_a_withdrawal_to_end_it() -> None:
    history = history_of(override())

    problems = refused(record_consent(history, declined(), now=LATER))

    assert "To end it, record a withdrawal" in problems["outcome"]


def test_not_approached_cannot_follow_an_approach() -> None:
    history = history_of(declined())

    problems = refused(record_consent(history, not_approached(), now=LATER))

    assert "already been approached" in problems["outcome"]


def test_consent_can_follow_a_decline_when_the_young_person_changes_their_mind() -> None:
    history = history_of(not_approached(), declined(), given_by_young_person())

    assert [r.outcome for r in history] == [
        ConsentOutcome.NOT_APPROACHED,
        ConsentOutcome.DECLINED,
        ConsentOutcome.GIVEN,
    ]
    assert current_basis(history) is not None


def test_a_sixteen_year_old_can_replace_a_parents_consent_with_their_own() -> None:
    history = history_of(given_by_parent(age=15), given_by_young_person(age=16))

    basis = current_basis(history)

    assert basis is not None
    assert basis.record.giver is ConsentGiver.YOUNG_PERSON_16_PLUS


# -- history ---------------------------------------------------------------------------------


def test_every_change_is_a_new_record_and_history_is_never_overwritten() -> None:
    history = history_of(not_approached(), given_by_young_person())
    before = list(history)

    record = recorded(record_consent(history, withdrawn(), now=LATER))

    assert history == before
    assert (record.seq, record.supersedes) == (3, 2)
    assert [r.supersedes for r in history] == [None, 1]


def test_fields_that_do_not_belong_to_the_outcome_are_not_stored() -> None:
    record = recorded(
        record_consent(
            [],
            given_by_young_person(
                age=19,
                gillick_assessment="not relevant",
                override_reason="not relevant",
                authoriser_name="Someone",
                not_approached_reason=NotApproachedReason.TOO_UNWELL,
            ),
            now=T0,
        )
    )

    assert record.gillick_assessment is None
    assert record.override_reason is None
    assert record.authoriser_name is None
    assert record.not_approached_reason is None


def test_the_basis_at_a_past_moment_is_the_one_then_in_force() -> None:
    history = history_of(given_by_young_person(), withdrawn(), step=timedelta(hours=1))

    assert current_basis(history, at=T0 - timedelta(seconds=1)) is None
    at_consent = current_basis(history, at=T0 + timedelta(minutes=30))
    assert at_consent is not None and at_consent.kind is BasisKind.CONSENT_GIVEN
    assert current_basis(history, at=T0 + timedelta(hours=1)) is None
    assert latest_record(history, at=T0 + timedelta(minutes=59)) == history[0]


def test_history_of_another_referral_is_a_broken_invariant() -> None:
    history = history_of(declined(referral_id="ref-0002"))

    with pytest.raises(ConsentHistoryError):
        record_consent(history, given_by_young_person(), now=LATER)


def test_history_out_of_order_is_a_broken_invariant() -> None:
    first, second = history_of(not_approached(), declined())

    with pytest.raises(ConsentHistoryError):
        current_basis([second, first])


def test_history_with_a_missing_record_is_a_broken_invariant() -> None:
    first, _, third = history_of(given_by_young_person(), withdrawn(), given_by_young_person())

    with pytest.raises(ConsentHistoryError):
        current_basis([first, third])


def test_a_clock_earlier_than_the_latest_record_is_a_broken_invariant() -> None:
    history = history_of(given_by_young_person())

    with pytest.raises(ConsentHistoryError, match="server clock"):
        record_consent(history, withdrawn(), now=T0 - timedelta(minutes=1))


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        record_consent([], declined(), now=datetime(2025, 3, 14, 22, 30))


def test_a_naive_override_time_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        record_consent([], override(override_at=datetime(2025, 3, 14, 22, 0)), now=T0)


def test_a_proposal_without_the_recording_user_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        record_consent([], declined(recorded_by=" "), now=T0)


def test_reprs_show_no_free_text() -> None:
    p = override(override_reason="Concern raised about the older brother")
    record = recorded(record_consent([], p, now=T0))

    for text in (repr(p), repr(record), str(record)):
        assert "brother" not in text
        assert "Duty Safeguarding Lead" not in text
        assert REFERRAL in text


def test_a_record_is_frozen() -> None:
    record = recorded(record_consent([], declined(), now=T0))

    with pytest.raises(AttributeError):
        record.outcome = ConsentOutcome.GIVEN  # type: ignore[misc]
