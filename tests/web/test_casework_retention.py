"""Retention reaches the casework: when a referral's identifiable data is due, the bodies of
its case notes go with the identity, through the real casework service and the real retention
job on a fixed clock. The note rows (author, time), contact attempts and counts stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consent.records import ConsentGiver, ConsentOutcome, ConsentProposal, ConsentRecord
from consent.retention import RetentionPolicy
from referral_gateway.services.retention import erase_identifiable
from referral_gateway.storage.casework import CONTACTS, NOTES
from tests.web.conftest import Web
from tests.web.test_casework_service import Setup, given

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
NOTE = "Met Jordan with his aunt in the family room; he plays for Testtown FC"


@pytest.fixture
def s(engine, keyring, clock) -> Setup:
    return Setup(engine, keyring, clock)


def retention(s: Setup, *, after: timedelta):  # type: ignore[no-untyped-def]
    return erase_identifiable(
        s.engine,
        s.casework.cases.keyring,
        s.casework.sharing.audit,
        RetentionPolicy(),  # 7 days after a withdrawal, a decline, a stale candidate
        now=s.clock() + after,
    )


def note_rows(s: Setup, rid: str) -> list[tuple[str, bytes | None]]:
    with s.engine.connect() as conn:
        return [
            (r.author, r.body_enc)
            for r in conn.execute(
                select(NOTES.c.author, NOTES.c.body_enc).where(NOTES.c.referral_id == rid)
            )
        ]


def withdraw(s: Setup, rid: str) -> None:
    record = s.casework.record_consent(
        s.ash, rid, ConsentProposal(rid, ConsentOutcome.WITHDRAWN, recorded_by=s.ash.id)
    )
    assert isinstance(record, ConsentRecord)


def worked_with_two_notes(s: Setup) -> str:
    """Claimed, consent given, a face-to-face contact and two notes."""
    rid = s.ed.stab_wound()
    assert s.casework.claim(s.ash, rid) is None
    assert isinstance(given(s, rid), ConsentRecord)
    assert (
        s.casework.log_contact(s.ash, rid, at=s.clock(), method="face_to_face", outcome="engaged")
        is None
    )
    assert s.casework.add_note(s.ash, rid, NOTE) is None
    assert s.casework.add_note(s.ash, rid, "Second visit booked") is None
    return rid


def test_withdrawn_consent_takes_the_case_notes_with_the_identity_seven_days_later(s):
    rid = worked_with_two_notes(s)
    withdraw(s, rid)

    early = retention(s, after=7 * DAY - MINUTE)
    kept = note_rows(s, rid)
    due = retention(s, after=7 * DAY)

    assert early.case_notes == 0 and all(body is not None for _, body in kept)
    assert dict(due.referrals) == {"withdrawn": 1} and due.case_notes == 2
    assert note_rows(s, rid) == [(s.ash.id, None), (s.ash.id, None)]  # rows and authors stay
    with s.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CONTACTS)).scalar() == 1
    assert retention(s, after=8 * DAY).case_notes == 0  # nothing left to erase


def test_notes_stay_while_consented_support_goes_on(s):
    rid = worked_with_two_notes(s)

    result = retention(s, after=3650 * DAY)

    assert result.referrals_erased == 0 and result.case_notes == 0
    assert [n.body for n in s.casework.detail(s.ash, rid).unlocked.notes] == [
        NOTE,
        "Second visit booked",
    ]


def test_a_note_written_after_an_earlier_erasure_goes_when_its_referral_is_due_again(s):
    rid = s.ed.stab_wound()
    s.casework.claim(s.ash, rid)
    stale = retention(s, after=7 * DAY)  # nobody recorded an outcome: a stale candidate
    assert dict(stale.referrals) == {"stale_candidate": 1}
    s.clock.advance(days=8)
    assert isinstance(given(s, rid), ConsentRecord)  # the young person came back later
    assert s.casework.add_note(s.ash, rid, NOTE) is None
    withdraw(s, rid)

    result = retention(s, after=7 * DAY)

    assert result.case_notes == 1
    assert note_rows(s, rid) == [(s.ash.id, None)]


def test_the_referral_page_says_a_note_was_erased_instead_of_showing_it(web: Web, keyring):
    ash = web.account("ash")
    casework = web.ctx.casework
    rid = web.ed.stab_wound()
    casework.claim(ash, rid)
    proposal = ConsentProposal(
        rid,
        ConsentOutcome.GIVEN,
        recorded_by=ash.id,
        giver=ConsentGiver.YOUNG_PERSON_16_PLUS,
        young_person_age=16,
    )
    casework.record_consent(ash, rid, proposal)
    casework.add_note(ash, rid, NOTE)
    casework.record_consent(
        ash, rid, ConsentProposal(rid, ConsentOutcome.WITHDRAWN, recorded_by=ash.id)
    )
    web.clock.advance(days=7)
    erased = erase_identifiable(
        web.ctx.engine, keyring, casework.sharing.audit, RetentionPolicy(), now=web.clock()
    )
    assert erased.case_notes == 1
    casework.record_consent(ash, rid, proposal)  # the young person agreed again later

    page = web.signed_in("ash").get(f"/referrals/{rid}").text

    assert "Erased under the retention rules." in page
    assert "family room" not in page
