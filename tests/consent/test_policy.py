from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from consent.errors import InvalidInputError
from consent.policy import (
    Actor,
    ConsentDecision,
    DecisionReason,
    FieldGroup,
    Purpose,
    ReferralView,
    decide,
    onward_delivery,
)
from consent.records import BasisKind, ConsentRecord
from tests.consent.builders import (
    OTHER_SITE,
    OTHER_WORKER,
    T0,
    administrator,
    declined,
    given_by_young_person,
    history_of,
    not_approached,
    override,
    programme_lead,
    referral,
    team_lead,
    withdrawn,
    youth_worker,
)

IDENTIFIABLE = [g for g in FieldGroup if g is not FieldGroup.APPROACH_CARD]
NOW = T0 + timedelta(hours=3)  # after every record the builders make


def decision(
    actor: Actor,
    group: FieldGroup,
    purpose: Purpose = Purpose.DETAIL_VIEW,
    history: Sequence[ConsentRecord] = (),
    *,
    of: ReferralView | None = None,
    now: datetime = NOW,
) -> ConsentDecision:
    return decide(actor, of or referral(), group, purpose, history, now=now)


CONSENTED = history_of(given_by_young_person())
SHARING = history_of(given_by_young_person(onward_sharing=True))  # covers onward sharing
OVERRIDDEN = history_of(declined(), override())


# -- before consent ----------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", [Purpose.QUEUE_VIEW, Purpose.DETAIL_VIEW])
def test_youth_worker_of_the_site_sees_the_approach_card_before_consent(purpose: Purpose) -> None:
    d = decision(youth_worker(), FieldGroup.APPROACH_CARD, purpose)

    assert d == ConsentDecision(True, DecisionReason.APPROACH_CARD, None, audit_required=False)


def test_unassigned_youth_worker_sees_approach_cards_in_the_queue() -> None:
    d = decision(
        youth_worker(), FieldGroup.APPROACH_CARD, Purpose.QUEUE_VIEW, of=referral(assigned_to=None)
    )

    assert d.allowed


@pytest.mark.parametrize("group", IDENTIFIABLE)
def test_pre_consent_identifiable_data_is_refused_and_must_be_audited(group: FieldGroup) -> None:
    d = decision(youth_worker(), group)

    assert not d.allowed
    assert d.reason is DecisionReason.NO_CONSENT_YET
    assert d.basis is None
    assert d.audit_required


def test_pre_consent_identity_is_refused_to_a_team_lead_too() -> None:
    d = decision(team_lead(), FieldGroup.IDENTITY)

    assert (d.allowed, d.reason, d.audit_required) == (False, DecisionReason.NO_CONSENT_YET, True)


@pytest.mark.parametrize(
    ("history", "reason"),
    [
        (history_of(declined()), DecisionReason.CONSENT_DECLINED),
        (history_of(not_approached()), DecisionReason.NOT_APPROACHED),
        (
            history_of(given_by_young_person(onward_sharing=True), withdrawn()),
            DecisionReason.CONSENT_WITHDRAWN,
        ),
        (history_of(override(), withdrawn()), DecisionReason.CONSENT_WITHDRAWN),
    ],
    ids=["declined", "not approached", "consent withdrawn", "override withdrawn"],
)
def test_identity_stays_locked_without_a_basis_and_says_why(
    history: list[ConsentRecord], reason: DecisionReason
) -> None:
    d = decision(youth_worker(), FieldGroup.IDENTITY, history=history)

    assert (d.allowed, d.reason, d.audit_required) == (False, reason, True)


# -- with consent --------------------------------------------------------------------------------


@pytest.mark.parametrize("group", IDENTIFIABLE)
def test_assigned_youth_worker_sees_identifiable_data_after_consent(group: FieldGroup) -> None:
    d = decision(youth_worker(), group, history=CONSENTED)

    assert d == ConsentDecision(
        True, DecisionReason.CONSENT_GIVEN, BasisKind.CONSENT_GIVEN, audit_required=True
    )


def test_youth_worker_not_assigned_is_refused_identity_even_with_consent() -> None:
    d = decision(youth_worker(OTHER_WORKER), FieldGroup.IDENTITY, history=CONSENTED)

    assert (d.allowed, d.reason, d.audit_required) == (False, DecisionReason.NOT_ASSIGNED, True)


def test_team_lead_sees_identity_of_any_consented_referral_of_their_site() -> None:
    d = decision(team_lead(), FieldGroup.CONTACT, history=CONSENTED, of=referral(assigned_to=None))

    assert d.allowed and d.basis is BasisKind.CONSENT_GIVEN and d.audit_required


def test_withdrawn_consent_locks_identifiable_fields() -> None:
    history = history_of(given_by_young_person(), withdrawn())

    before = decision(youth_worker(), FieldGroup.IDENTITY, history=history, now=T0)
    after = decision(youth_worker(), FieldGroup.IDENTITY, history=history)

    assert before.allowed
    assert not after.allowed and after.reason is DecisionReason.CONSENT_WITHDRAWN


def test_consent_recorded_after_now_does_not_count_yet() -> None:
    d = decision(
        youth_worker(), FieldGroup.IDENTITY, history=CONSENTED, now=T0 - timedelta(minutes=1)
    )

    assert not d.allowed and d.reason is DecisionReason.NO_CONSENT_YET


# -- safeguarding override -----------------------------------------------------------------------


@pytest.mark.parametrize("actor", [youth_worker(), team_lead()], ids=["youth worker", "team lead"])
def test_override_lets_the_assigned_worker_and_team_lead_view_identity(actor: Actor) -> None:
    d = decision(actor, FieldGroup.IDENTITY, history=OVERRIDDEN)

    assert d == ConsentDecision(
        True,
        DecisionReason.SAFEGUARDING_OVERRIDE,
        BasisKind.SAFEGUARDING_OVERRIDE,
        audit_required=True,
    )


@pytest.mark.parametrize("group", list(FieldGroup))
def test_an_override_sends_a_referral_on_only_when_its_authoriser_said_so(
    group: FieldGroup,
) -> None:
    history = history_of(declined(), override(onward_sharing=True))
    d = decision(team_lead(), group, Purpose.OUTBOUND_DELIVERY, history=history)

    assert (d.allowed, d.reason, d.basis, d.audit_required) == (
        True,
        DecisionReason.SAFEGUARDING_OVERRIDE,
        BasisKind.SAFEGUARDING_OVERRIDE,
        True,
    )


@pytest.mark.parametrize("group", list(FieldGroup))
def test_an_override_that_does_not_say_so_never_sends_a_referral_on(group: FieldGroup) -> None:
    d = decision(team_lead(), group, Purpose.OUTBOUND_DELIVERY, history=OVERRIDDEN)

    assert (d.allowed, d.reason, d.audit_required) == (
        False,
        DecisionReason.OVERRIDE_NOT_FOR_DELIVERY,
        True,
    )


def test_override_does_not_allow_exporting_identity() -> None:
    d = decision(team_lead(), FieldGroup.IDENTITY, Purpose.EXPORT, history=OVERRIDDEN)

    assert not d.allowed and d.reason is DecisionReason.OVERRIDE_NOT_FOR_EXPORT


# -- export and outbound delivery ----------------------------------------------------------------


@pytest.mark.parametrize("group", list(FieldGroup))
def test_outbound_delivery_with_consent_covering_onward_sharing_is_allowed_and_audited(
    group: FieldGroup,
) -> None:
    d = decision(youth_worker(), group, Purpose.OUTBOUND_DELIVERY, history=SHARING)

    assert d.allowed and d.basis is BasisKind.CONSENT_GIVEN and d.audit_required


def test_outbound_delivery_with_consent_not_covering_onward_sharing_is_refused() -> None:
    d = decision(youth_worker(), FieldGroup.IDENTITY, Purpose.OUTBOUND_DELIVERY, history=CONSENTED)

    assert (d.allowed, d.reason, d.audit_required) == (
        False,
        DecisionReason.CONSENT_NOT_FOR_ONWARD_SHARING,
        True,
    )


def test_outbound_delivery_before_consent_is_refused_even_for_the_approach_card() -> None:
    d = decision(youth_worker(), FieldGroup.APPROACH_CARD, Purpose.OUTBOUND_DELIVERY)

    assert (d.allowed, d.reason, d.audit_required) == (False, DecisionReason.NO_CONSENT_YET, True)


def test_youth_worker_cannot_export_identity_even_with_consent() -> None:
    d = decision(youth_worker(), FieldGroup.IDENTITY, Purpose.EXPORT, history=CONSENTED)

    assert not d.allowed and d.reason is DecisionReason.EXPORT_NEEDS_TEAM_LEAD


def test_team_lead_exports_consented_identity_with_an_audit_entry() -> None:
    d = decision(team_lead(), FieldGroup.IDENTITY, Purpose.EXPORT, history=CONSENTED)

    assert d.allowed and d.audit_required


def test_exporting_approach_cards_needs_no_consent_but_is_audited() -> None:
    d = decision(youth_worker(), FieldGroup.APPROACH_CARD, Purpose.EXPORT)

    assert (d.allowed, d.reason, d.audit_required) == (True, DecisionReason.APPROACH_CARD, True)


# -- site scope and roles ------------------------------------------------------------------------


@pytest.mark.parametrize("group", list(FieldGroup))
def test_youth_worker_of_another_site_is_refused_everything(group: FieldGroup) -> None:
    d = decision(youth_worker(), group, history=CONSENTED, of=referral(site=OTHER_SITE))

    assert not d.allowed and d.reason is DecisionReason.OTHER_SITE
    assert d.audit_required is group.identifiable


def test_team_lead_of_another_site_is_refused_a_report_too() -> None:
    d = decision(
        team_lead(), FieldGroup.APPROACH_CARD, Purpose.REPORT, of=referral(site=OTHER_SITE)
    )

    assert not d.allowed and d.reason is DecisionReason.OTHER_SITE


@pytest.mark.parametrize(
    "purpose", [p for p in Purpose if p is not Purpose.REPORT], ids=lambda p: p.value
)
@pytest.mark.parametrize("group", list(FieldGroup), ids=lambda g: g.value)
def test_programme_lead_sees_nothing_but_aggregates(purpose: Purpose, group: FieldGroup) -> None:
    d = decision(programme_lead(), group, purpose, history=CONSENTED)

    assert not d.allowed and d.reason is DecisionReason.AGGREGATES_ONLY


def test_programme_lead_counts_approach_cards_for_a_report() -> None:
    d = decision(programme_lead(), FieldGroup.APPROACH_CARD, Purpose.REPORT)

    assert d == ConsentDecision(True, DecisionReason.AGGREGATE_REPORT, None, audit_required=False)


@pytest.mark.parametrize("group", IDENTIFIABLE)
def test_a_report_never_reads_identifiable_data_even_with_consent(group: FieldGroup) -> None:
    d = decision(team_lead(), group, Purpose.REPORT, history=CONSENTED)

    assert (d.allowed, d.reason, d.audit_required) == (
        False,
        DecisionReason.REPORT_IS_AGGREGATE,
        True,
    )


@pytest.mark.parametrize(
    "purpose", [p for p in Purpose if p is not Purpose.REPORT], ids=lambda p: p.value
)
@pytest.mark.parametrize("group", list(FieldGroup), ids=lambda g: g.value)
def test_administrator_reads_no_referral_even_with_consent(
    purpose: Purpose, group: FieldGroup
) -> None:
    d = decision(administrator(), group, purpose, history=CONSENTED)

    assert not d.allowed and d.reason is DecisionReason.ADMINISTRATOR_NO_REFERRALS


def test_every_reason_has_a_sentence_for_the_person_refused() -> None:
    for reason in DecisionReason:
        message = ConsentDecision(False, reason, None, False).message
        assert message.endswith(".") and len(message) > 10


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        decision(youth_worker(), FieldGroup.APPROACH_CARD, now=datetime(2025, 3, 14, 23, 0))


def test_onward_delivery_needs_a_basis_in_force_that_covers_onward_sharing():
    assert onward_delivery(SHARING, now=NOW).allowed
    for history, reason in (
        (CONSENTED, DecisionReason.CONSENT_NOT_FOR_ONWARD_SHARING),
        ((), DecisionReason.NO_CONSENT_YET),
        (history_of(declined()), DecisionReason.CONSENT_DECLINED),
        (
            history_of(given_by_young_person(onward_sharing=True), withdrawn()),
            DecisionReason.CONSENT_WITHDRAWN,
        ),
        (history_of(override()), DecisionReason.OVERRIDE_NOT_FOR_DELIVERY),
    ):
        refused = onward_delivery(history, now=NOW)
        assert (refused.allowed, refused.reason, refused.audit_required) == (False, reason, True)
