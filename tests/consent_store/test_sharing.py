"""The sharing service: every consent path, the gate on identifiable data, and its audit."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from consent.errors import InvalidInputError
from consent.policy import ConsentDecision, DecisionReason, FieldGroup, Purpose
from consent.records import (
    BasisKind,
    ConsentGiver,
    ConsentOutcome,
    ConsentRecord,
    NotApproachedReason,
    Refusal,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.errors import NotFound
from referral_gateway.services.sharing import ConsentHistoryView, RevealedIdentity
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.storage.consent_store import CONSENT
from tests.consent_store.builders import (
    ADDRESS,
    BIRTH_DATE,
    CLINICAL_NOTE,
    FAMILY_NAME,
    GILLICK_NOTE,
    GIVEN_NAMES,
    LEAD,
    NHS_NUMBER,
    OTHER_SITE_LEAD,
    OTHER_WORKER,
    OVERRIDE_REASON,
    PHONE,
    PROGRAMME_LEAD,
    T0,
    WORKER,
    by_parent,
    declined,
    gillick,
    given,
    minutes,
    not_approached,
    override,
    seed_referral,
    set_status,
    withdrawn,
)


@pytest.fixture
def referral(engine, keyring, assignments) -> str:
    seeded = seed_referral(engine, keyring)
    assignments.to[seeded.referral_id] = WORKER.user_id
    return seeded.referral_id


def status_of(engine, referral_id: str) -> ReferralStatus:
    with engine.connect() as conn:
        value = conn.execute(
            select(REFERRAL.c.status).where(REFERRAL.c.id == referral_id)
        ).scalar_one()
    return ReferralStatus(value)


def audit_trail(engine, audit, referral_id: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [(e.action.value, e.actor, e.why) for e in audit.entries(conn, subject=referral_id)]


def stored_records(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CONSENT)).scalar_one()


# -- consent given -------------------------------------------------------------------------


def test_consent_from_a_sixteen_year_old_unlocks_identity_for_the_assigned_worker(
    engine, sharing, audit, referral
):
    record = sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)

    revealed = sharing.reveal_identity(WORKER, referral, now=T0 + minutes(1))

    assert isinstance(record, ConsentRecord) and record.seq == 1
    assert status_of(engine, referral) is ReferralStatus.CONSENTED
    assert isinstance(revealed, RevealedIdentity)
    assert (revealed.nhs_number, revealed.family_name, revealed.given_names) == (
        NHS_NUMBER,
        FAMILY_NAME,
        GIVEN_NAMES,
    )
    assert (revealed.birth_date, revealed.address, revealed.phone) == (BIRTH_DATE, ADDRESS, PHONE)
    assert revealed.clinical_notes == (CLINICAL_NOTE,)
    assert revealed.basis is BasisKind.CONSENT_GIVEN
    assert audit_trail(engine, audit, referral) == [
        ("consent_change", "yw-ash", "given:young_person_16_plus"),
        ("unlock", "yw-ash", "consent_given"),
        (
            "view_identifiable",
            "yw-ash",
            "detail_view:consent_given:identity,contact,clinical_notes",
        ),
    ]


def test_gillick_competent_fourteen_year_old_consents_and_the_note_is_kept_for_the_lead(
    engine, sharing, referral
):
    record = sharing.record_consent_outcome(WORKER, referral, gillick(referral), now=T0)

    view = sharing.consent_history(LEAD, referral, now=T0 + minutes(1))

    assert isinstance(record, ConsentRecord)
    assert record.giver is ConsentGiver.GILLICK_COMPETENT_UNDER_16
    assert isinstance(view, ConsentHistoryView) and view.details_shown
    assert view.records[0].gillick_assessment == GILLICK_NOTE
    assert status_of(engine, referral) is ReferralStatus.CONSENTED


def test_a_parent_consents_for_a_twelve_year_old(engine, sharing, referral):
    record = sharing.record_consent_outcome(WORKER, referral, by_parent(referral), now=T0)

    assert isinstance(record, ConsentRecord)
    assert record.giver is ConsentGiver.PARENT_GUARDIAN
    assert status_of(engine, referral) is ReferralStatus.CONSENTED


def test_a_parent_cannot_consent_for_an_eighteen_year_old_and_nothing_is_written(
    engine, sharing, audit, referral
):
    result = sharing.record_consent_outcome(WORKER, referral, by_parent(referral, age=18), now=T0)

    assert isinstance(result, Refusal) and set(result.problems) == {"giver"}
    assert stored_records(engine) == 0
    assert status_of(engine, referral) is ReferralStatus.NEW
    assert audit_trail(engine, audit, referral) == []


# -- declined, not approached ---------------------------------------------------------------


def test_declined_keeps_identity_locked_and_the_refused_look_is_audited(
    engine, sharing, audit, referral
):
    sharing.record_consent_outcome(WORKER, referral, declined(referral), now=T0)

    result = sharing.reveal_identity(WORKER, referral, now=T0 + minutes(1))

    assert status_of(engine, referral) is ReferralStatus.DECLINED
    assert isinstance(result, ConsentDecision) and not result.allowed
    assert result.reason is DecisionReason.CONSENT_DECLINED
    assert audit_trail(engine, audit, referral) == [
        ("consent_change", "yw-ash", "declined"),
        ("view_refused", "yw-ash", "detail_view:consent_declined"),
    ]


def test_not_approached_for_an_other_reason_needs_a_detail(engine, sharing, referral):
    result = sharing.record_consent_outcome(
        WORKER, referral, not_approached(referral, detail="  "), now=T0
    )

    assert isinstance(result, Refusal) and set(result.problems) == {"not_approached_detail"}
    assert stored_records(engine) == 0


def test_not_approached_is_recorded_and_its_free_text_stays_hidden_without_consent(
    engine, sharing, referral
):
    record = sharing.record_consent_outcome(WORKER, referral, not_approached(referral), now=T0)

    view = sharing.consent_history(LEAD, referral, now=T0 + minutes(1))

    assert isinstance(record, ConsentRecord)
    assert record.not_approached_reason is NotApproachedReason.OTHER
    assert status_of(engine, referral) is ReferralStatus.NOT_APPROACHED
    assert isinstance(view, ConsentHistoryView) and not view.details_shown
    assert view.records[0].outcome is ConsentOutcome.NOT_APPROACHED
    assert view.records[0].not_approached_detail is None


def test_not_approached_because_discharged_needs_no_detail(engine, sharing, referral):
    record = sharing.record_consent_outcome(
        WORKER,
        referral,
        not_approached(
            referral, reason=NotApproachedReason.DISCHARGED_BEFORE_APPROACH, detail=None
        ),
        now=T0,
    )
    assert isinstance(record, ConsentRecord)
    assert status_of(engine, referral) is ReferralStatus.NOT_APPROACHED


# -- safeguarding override -------------------------------------------------------------------


def test_an_override_without_a_reason_is_refused_and_nothing_is_written(
    engine, sharing, audit, referral
):
    result = sharing.record_consent_outcome(LEAD, referral, override(referral, reason=" "), now=T0)

    assert isinstance(result, Refusal) and set(result.problems) == {"override_reason"}
    assert stored_records(engine) == 0
    assert status_of(engine, referral) is ReferralStatus.NEW
    assert audit_trail(engine, audit, referral) == []


def test_an_override_with_reason_and_authoriser_unlocks_viewing_but_not_export(
    engine, sharing, audit, referral
):
    record = sharing.record_consent_outcome(LEAD, referral, override(referral), now=T0)

    seen = sharing.reveal_identity(LEAD, referral, now=T0 + minutes(1))
    exported = sharing.reveal_identity(LEAD, referral, Purpose.EXPORT, now=T0 + minutes(2))
    history = sharing.consent_history(LEAD, referral, now=T0 + minutes(3))

    assert isinstance(record, ConsentRecord)
    assert status_of(engine, referral) is ReferralStatus.CONSENTED
    assert isinstance(seen, RevealedIdentity) and seen.basis is BasisKind.SAFEGUARDING_OVERRIDE
    assert isinstance(exported, ConsentDecision)
    assert exported.reason is DecisionReason.OVERRIDE_NOT_FOR_EXPORT
    assert isinstance(history, ConsentHistoryView)
    assert history.records[0].override_reason == OVERRIDE_REASON
    assert [a for a, _, _ in audit_trail(engine, audit, referral)] == [
        "consent_change",
        "unlock",
        "view_identifiable",
        "view_refused",
        "view_identifiable",  # the override reason in the history
    ]


# -- withdrawal -------------------------------------------------------------------------------


def test_withdrawal_locks_identifiable_data_again(engine, sharing, audit, referral):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)
    assert isinstance(
        sharing.reveal_identity(WORKER, referral, now=T0 + minutes(1)), RevealedIdentity
    )

    record = sharing.record_consent_outcome(
        WORKER, referral, withdrawn(referral), now=T0 + minutes(30)
    )
    after = sharing.reveal_identity(LEAD, referral, now=T0 + minutes(31))

    assert isinstance(record, ConsentRecord) and (record.seq, record.supersedes) == (2, 1)
    assert status_of(engine, referral) is ReferralStatus.WITHDRAWN
    assert isinstance(after, ConsentDecision)
    assert after.reason is DecisionReason.CONSENT_WITHDRAWN
    assert audit_trail(engine, audit, referral)[-2:] == [
        ("consent_change", "yw-ash", "withdrawn"),
        ("view_refused", "tl-cedar", "detail_view:consent_withdrawn"),
    ]


def test_withdrawing_before_any_consent_is_refused(engine, sharing, referral):
    result = sharing.record_consent_outcome(WORKER, referral, withdrawn(referral), now=T0)
    assert isinstance(result, Refusal) and set(result.problems) == {"outcome"}
    assert stored_records(engine) == 0


def test_history_is_never_overwritten_each_change_is_a_new_record(engine, sharing, referral):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)
    sharing.record_consent_outcome(WORKER, referral, withdrawn(referral), now=T0 + minutes(5))
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0 + minutes(9))

    view = sharing.consent_history(WORKER, referral, now=T0 + minutes(10))

    assert isinstance(view, ConsentHistoryView)
    assert [(r.seq, r.outcome.value, r.supersedes) for r in view.records] == [
        (1, "given", None),
        (2, "withdrawn", 1),
        (3, "given", 2),
    ]
    assert status_of(engine, referral) is ReferralStatus.CONSENTED
    assert view.basis is not None and view.basis.record.seq == 3


# -- who may look --------------------------------------------------------------------------------


def test_a_youth_worker_reading_identity_before_consent_is_refused_and_audited(
    engine, sharing, audit, referral
):
    result = sharing.reveal_identity(WORKER, referral, now=T0)

    assert isinstance(result, ConsentDecision) and not result.allowed
    assert result.reason is DecisionReason.NO_CONSENT_YET
    assert audit_trail(engine, audit, referral) == [
        ("view_refused", "yw-ash", "detail_view:no_consent_yet")
    ]


def test_a_youth_worker_not_assigned_is_refused_even_after_consent(
    engine, sharing, audit, referral
):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)

    result = sharing.reveal_identity(OTHER_WORKER, referral, now=T0 + minutes(1))

    assert isinstance(result, ConsentDecision) and result.reason is DecisionReason.NOT_ASSIGNED
    assert audit_trail(engine, audit, referral)[-1] == (
        "view_refused",
        "yw-birch",
        "detail_view:not_assigned",
    )


def test_without_an_assignment_lookup_a_youth_worker_never_sees_identity(engine, keyring, audit):
    from referral_gateway.services.sharing import Sharing

    referral = seed_referral(engine, keyring).referral_id
    sharing = Sharing(engine, keyring, audit)  # fails closed: nobody is assigned
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)

    assert isinstance(sharing.reveal_identity(WORKER, referral, now=T0), ConsentDecision)
    assert isinstance(sharing.reveal_identity(LEAD, referral, now=T0), RevealedIdentity)


def test_staff_of_another_site_can_neither_record_nor_read(engine, sharing, audit, referral):
    recorded = sharing.record_consent_outcome(
        OTHER_SITE_LEAD, referral, given(referral, by=OTHER_SITE_LEAD), now=T0
    )
    read = sharing.reveal_identity(OTHER_SITE_LEAD, referral, now=T0)

    assert isinstance(recorded, ConsentDecision) and recorded.reason is DecisionReason.OTHER_SITE
    assert isinstance(read, ConsentDecision) and read.reason is DecisionReason.OTHER_SITE
    assert stored_records(engine) == 0
    assert audit_trail(engine, audit, referral) == [
        ("view_refused", "tl-elm", "detail_view:other_site")
    ]


def test_a_programme_lead_sees_aggregates_only(engine, sharing, referral):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)
    result = sharing.reveal_identity(PROGRAMME_LEAD, referral, now=T0)
    assert isinstance(result, ConsentDecision) and result.reason is DecisionReason.AGGREGATES_ONLY


def test_only_the_asked_groups_are_revealed(engine, sharing, referral):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)

    revealed = sharing.reveal_identity(WORKER, referral, now=T0, groups=[FieldGroup.CONTACT])

    assert isinstance(revealed, RevealedIdentity)
    assert (revealed.address, revealed.phone) == (ADDRESS, PHONE)
    assert (revealed.nhs_number, revealed.family_name, revealed.clinical_notes) == (None, None, ())


def test_a_revealed_identity_never_shows_its_values_in_a_repr(sharing, referral):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)
    revealed = sharing.reveal_identity(WORKER, referral, now=T0)
    assert FAMILY_NAME not in repr(revealed) and NHS_NUMBER not in str(revealed)


def test_a_team_lead_export_after_consent_is_allowed_and_audited_as_an_export(
    engine, sharing, audit, referral
):
    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)

    exported = sharing.reveal_identity(LEAD, referral, Purpose.EXPORT, now=T0)
    by_worker = sharing.authorise(WORKER, referral, FieldGroup.IDENTITY, Purpose.EXPORT, now=T0)

    assert isinstance(exported, RevealedIdentity)
    assert by_worker.reason is DecisionReason.EXPORT_NEEDS_TEAM_LEAD
    assert audit_trail(engine, audit, referral)[-2:] == [
        ("export", "tl-cedar", "export:consent_given:identity,contact,clinical_notes"),
        ("view_refused", "yw-ash", "export:export_needs_team_lead"),
    ]


def test_outbound_delivery_is_authorised_by_consent_to_onward_sharing(
    engine, sharing, audit, referral
):
    before = sharing.authorise(
        LEAD, referral, FieldGroup.APPROACH_CARD, Purpose.OUTBOUND_DELIVERY, now=T0
    )
    sharing.record_consent_outcome(WORKER, referral, given(referral, onward_sharing=True), now=T0)
    after = sharing.authorise(
        LEAD, referral, FieldGroup.APPROACH_CARD, Purpose.OUTBOUND_DELIVERY, now=T0
    )

    assert not before.allowed and after.allowed
    assert [a for a, _, _ in audit_trail(engine, audit, referral)] == [
        "view_refused",
        "consent_change",
        "unlock",
        "outbound_delivery",
    ]


def test_the_queue_shows_approach_cards_to_the_site_before_consent(engine, keyring, sharing):
    ours = seed_referral(engine, keyring, visit_number="V1").referral_id
    theirs = seed_referral(engine, keyring, visit_number="V2", site="RYY02").referral_id

    decisions = sharing.queue_decisions(WORKER, [ours, theirs, "no-such-id"], now=T0)

    assert decisions[ours].allowed and decisions[ours].reason is DecisionReason.APPROACH_CARD
    assert decisions[theirs].reason is DecisionReason.OTHER_SITE
    assert "no-such-id" not in decisions


# -- referral states and programming errors ---------------------------------------------------


def test_an_unknown_referral_is_not_found(sharing):
    with pytest.raises(NotFound):
        sharing.reveal_identity(LEAD, "no-such-referral", now=T0)


def test_a_voided_referral_takes_no_outcome(engine, sharing, referral):
    set_status(engine, referral, ReferralStatus.VOIDED, T0)
    result = sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0)
    assert isinstance(result, Refusal) and set(result.problems) == {"outcome"}
    assert stored_records(engine) == 0


def test_consent_renewed_during_support_leaves_the_referral_in_support(engine, sharing, referral):
    sharing.record_consent_outcome(WORKER, referral, by_parent(referral, age=15), now=T0)
    set_status(engine, referral, ReferralStatus.IN_SUPPORT, T0 + minutes(1))

    sharing.record_consent_outcome(WORKER, referral, given(referral), now=T0 + minutes(2))

    assert status_of(engine, referral) is ReferralStatus.IN_SUPPORT


def test_a_proposal_must_be_recorded_by_the_signed_in_user(sharing, referral):
    with pytest.raises(InvalidInputError):
        sharing.record_consent_outcome(LEAD, referral, given(referral, by=WORKER), now=T0)


def test_outcomes_recorded_at_once_by_two_workers_are_numbered_without_gaps(
    engine, sharing, referral
):
    errors: list[BaseException] = []

    def record(actor) -> None:
        try:
            for _ in range(4):  # the same instant: time never runs backwards between them
                sharing.record_consent_outcome(
                    actor, referral, declined(referral, by=actor), now=T0
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(a,)) for a in (WORKER, OTHER_WORKER)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with engine.connect() as conn:
        seqs = conn.execute(select(CONSENT.c.seq).order_by(CONSENT.c.seq)).scalars().all()
    assert errors == []
    assert seqs == list(range(1, 9))
