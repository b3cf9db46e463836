"""Casework units of work against a real database: claims under contention, consent that
unlocks identifiable details (audited), withdrawal, encryption at rest, escalation."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from consent.audit import AuditAction
from consent.policy import Role
from consent.records import ConsentGiver, ConsentOutcome, ConsentProposal, ConsentRecord, Refusal
from referral_gateway.domain.casework import CaseRefusal
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.casework import Casework, QueueEvent, escalate_untouched
from referral_gateway.services.errors import NotFound
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import NOTES, CaseStore, assigned_to
from referral_gateway.storage.consent_tables import CONSENT
from referral_gateway.storage.errors import ConcurrentChange
from referral_gateway.storage.queue import QueueFilter, queue_cards
from tests.web.builders import FAST_HASHER, SITE_A, SITE_B, FakeEd, Patient, add_account


class Setup:
    def __init__(self, engine, keyring, clock) -> None:  # type: ignore[no-untyped-def]
        self.engine = engine
        self.clock = clock
        self.events: list[QueueEvent] = []
        self.accounts = AccountStore(engine, hasher=FAST_HASHER)
        self.audit_store = AuditStore()
        self.casework = Casework(
            engine,
            keyring,
            clock,
            accounts=self.accounts,
            sharing=Sharing(engine, keyring, self.audit_store, assignments=assigned_to),
            publish=self.events.append,
            local_zone=ZoneInfo("Europe/London"),
        )
        self.ed = FakeEd(engine, keyring, clock)
        self.ash = add_account(self.accounts, "ash", Role.YOUTH_WORKER)
        self.birch = add_account(self.accounts, "birch", Role.YOUTH_WORKER)
        self.lead = add_account(self.accounts, "lead", Role.TEAM_LEAD)
        self.far = add_account(self.accounts, "far", Role.YOUTH_WORKER, (SITE_B,))

    def audit(self):  # type: ignore[no-untyped-def]
        """The trail's entries about referrals (not the setup's account creations)."""
        with self.engine.connect() as conn:
            entries = self.audit_store.entries(conn)
        return [e for e in entries if e.action is not AuditAction.ACCOUNT_CHANGE]


@pytest.fixture
def s(engine, keyring, clock) -> Setup:
    return Setup(engine, keyring, clock)


def given(s: Setup, rid: str, by=None) -> ConsentRecord | Refusal | CaseRefusal:  # type: ignore[no-untyped-def]
    proposal = ConsentProposal(
        rid,
        ConsentOutcome.GIVEN,
        recorded_by=(by or s.ash).id,
        giver=ConsentGiver.YOUNG_PERSON_16_PLUS,
        young_person_age=16,
    )
    return s.casework.record_consent(by or s.ash, rid, proposal)


def test_two_workers_claiming_at_once_leave_it_with_exactly_one(s):
    rid = s.ed.stab_wound()
    store = CaseStore(s.casework.cases.keyring)
    with s.engine.connect() as conn:
        seen_by_ash = store.load(conn, rid)
        seen_by_birch = store.load(conn, rid)
    from referral_gateway.domain.casework import claim

    with s.engine.begin() as conn:
        store.save(
            conn,
            seen_by_ash,
            claim(seen_by_ash.case, s.ash, now=s.clock()),
            by=s.ash.id,
            now=s.clock(),
        )
    with pytest.raises(ConcurrentChange), s.engine.begin() as conn:
        store.save(
            conn,
            seen_by_birch,
            claim(seen_by_birch.case, s.birch, now=s.clock()),
            by=s.birch.id,
            now=s.clock(),
        )
    # through the service the loser reads again and hears why
    refusal = s.casework.claim(s.birch, rid)
    assert isinstance(refusal, CaseRefusal)
    assert s.casework.card(s.lead, rid).case.assigned_to == s.ash.id


def test_before_consent_identifiable_details_stay_locked_and_the_refusal_is_audited(s):
    rid = s.ed.stab_wound()
    assert s.casework.claim(s.ash, rid) is None
    detail = s.casework.detail(s.ash, rid)
    assert detail.unlocked.identity is None and detail.unlocked.notes is None
    [entry] = s.audit()
    assert (entry.action, entry.subject, entry.actor) == (AuditAction.VIEW_REFUSED, rid, s.ash.id)


def test_consent_unlocks_the_details_for_the_assigned_worker_and_every_view_is_audited(s):
    rid = s.ed.stab_wound(patient=Patient(given="Jordan", family="Testington"))
    s.casework.claim(s.ash, rid)
    record = given(s, rid)
    assert isinstance(record, ConsentRecord)
    detail = s.casework.detail(s.ash, rid)
    assert detail.case.status is ReferralStatus.CONSENTED
    assert detail.unlocked.identity is not None
    assert (detail.unlocked.identity.given_names, detail.unlocked.identity.nhs_number) == (
        "Jordan",
        "9990001235",
    )
    assert detail.unlocked.identity.clinical_notes == ("stabbed in left thigh",)
    actions = [e.action for e in s.audit()]
    assert actions == [
        AuditAction.CONSENT_CHANGE,
        AuditAction.UNLOCK,
        AuditAction.VIEW_IDENTIFIABLE,
    ]
    why = "detail_view:consent_given:identity,contact,clinical_notes,case_notes"
    assert s.audit()[-1].why == why
    assert s.audit_store.verify(s.engine).ok


def test_another_worker_of_the_site_does_not_see_a_claimed_referrals_details(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    given(s, rid)
    assert s.casework.detail(s.birch, rid).unlocked.identity is None
    assert s.casework.detail(s.lead, rid).unlocked.identity is not None


def test_withdrawal_locks_the_details_again(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    given(s, rid)
    withdrawn = s.casework.record_consent(
        s.ash, rid, ConsentProposal(rid, ConsentOutcome.WITHDRAWN, recorded_by=s.ash.id)
    )
    assert isinstance(withdrawn, ConsentRecord)
    detail = s.casework.detail(s.ash, rid)
    assert detail.unlocked.identity is None
    assert "withdrawn" in detail.unlocked.message


def test_a_consent_the_rules_refuse_comes_back_with_the_field_to_correct(s):
    rid = s.ed.stab_wound()
    proposal = ConsentProposal(
        rid,
        ConsentOutcome.GIVEN,
        recorded_by=s.ash.id,
        giver=ConsentGiver.YOUNG_PERSON_16_PLUS,
        young_person_age=14,
    )
    refusal = s.casework.record_consent(s.ash, rid, proposal)
    assert isinstance(refusal, Refusal) and "Gillick" in refusal.problems["giver"]
    assert s.audit() == []


def test_notes_and_consent_free_text_are_encrypted_at_rest(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    proposal = ConsentProposal(
        rid,
        ConsentOutcome.SAFEGUARDING_OVERRIDE,
        recorded_by=s.ash.id,
        override_reason="Disclosed being made to carry drugs",
        authoriser_name="Pat Lead",
        authoriser_role="Safeguarding lead",
        override_at=s.clock(),
    )
    assert isinstance(s.casework.record_consent(s.ash, rid, proposal), ConsentRecord)
    assert s.casework.add_note(s.ash, rid, "Met in the family room; mum present") is None
    with s.engine.connect() as conn:
        note_bytes = conn.execute(select(NOTES.c.body_enc)).scalar_one()
        record_bytes = conn.execute(select(CONSENT.c.details_enc)).scalar_one()
    assert b"family room" not in note_bytes and b"carry drugs" not in record_bytes
    notes = s.casework.detail(s.ash, rid).unlocked.notes
    assert [n.body for n in notes] == ["Met in the family room; mum present"]


def test_a_note_needs_a_basis_for_sharing(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    refusal = s.casework.add_note(s.ash, rid, "Saw them briefly")
    assert isinstance(refusal, CaseRefusal) and "consent" in refusal.problems["note"]


def test_another_sites_referral_does_not_exist_for_the_worker(s):
    rid = s.ed.stab_wound(site=SITE_A)
    with pytest.raises(NotFound):
        s.casework.detail(s.far, rid)
    with pytest.raises(NotFound):
        s.casework.claim(s.far, rid)


def test_unclaimed_referrals_escalate_once(s):
    rid = s.ed.stab_wound()
    claimed = s.ed.stab_wound()
    s.casework.claim(s.ash, claimed)
    after = timedelta(minutes=20)

    def escalate():  # type: ignore[no-untyped-def]
        return escalate_untouched(s.engine, now=s.clock(), after=after)

    s.clock.advance(minutes=19)
    assert escalate() == []
    s.clock.advance(minutes=2)
    assert escalate() == [(rid, SITE_A)]
    assert escalate() == []


def test_the_whole_casework_path_ends_with_a_follow_up_due_in_six_months(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    given(s, rid)
    now = s.clock()
    assert (
        s.casework.log_contact(s.ash, rid, at=now, method="face_to_face", outcome="engaged") is None
    )
    assert s.casework.set_support(s.ash, rid, tier="short", start_on=now.date()) is None
    assert (
        s.casework.add_onward(
            s.ash, rid, kind="referral", service_type="mental_health", on=now.date()
        )
        is None
    )
    assert s.casework.close(s.ash, rid, outcome="support_completed") is None
    detail = s.casework.detail(s.ash, rid)
    assert detail.case.status is ReferralStatus.CLOSED
    assert [c.attempt.outcome.value for c in detail.contacts] == ["engaged"]
    assert [o.onward.service_type.value for o in detail.onwards] == ["mental_health"]
    assert detail.case.follow_up_due_on is not None
    assert (detail.case.follow_up_due_on - now.date()).days in range(181, 185)


def test_a_manual_referral_joins_the_queue_claimed_by_whoever_raised_it(s):
    from referral_gateway.domain.manual import check_manual_referral

    manual = check_manual_referral(
        s.ash,
        {
            "site": SITE_A,
            "concern": "exploitation",
            "age": "14",
            "referrer": "ED nurse",
            "ed_area": "Paeds ED",
        },
        arrival=s.clock() - timedelta(minutes=30),
        birth_date=None,
        now=s.clock(),
        today=s.clock().date(),
    )
    assert not isinstance(manual, CaseRefusal)
    rid = s.casework.create_manual(s.ash, manual)
    with s.engine.connect() as conn:
        cards, total = queue_cards(
            conn,
            QueueFilter(frozenset({SITE_A}), frozenset({ReferralStatus.CLAIMED})),
            s.casework.cases.keyring,
        )
    assert total == 1 and cards[0].referral_id == rid
    assert (cards[0].injury_category, cards[0].source, cards[0].age) == (
        "exploitation",
        "manual",
        14,
    )
    assert cards[0].case.assigned_to == s.ash.id
    assert QueueEvent("new", rid, SITE_A) in s.events
    with s.engine.connect() as conn:
        source, status, message_id = conn.execute(
            select(ATTENDANCE.c.source, ATTENDANCE.c.status, ATTENDANCE.c.last_message_id)
            .join(REFERRAL, REFERRAL.c.attendance_id == ATTENDANCE.c.id)
            .where(REFERRAL.c.id == rid)
        ).one()
    assert (source, status, message_id) == ("manual", "in_department", None)  # no message 0
