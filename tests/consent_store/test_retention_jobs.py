"""Retention jobs, called directly with a fixed clock: identifiable data goes when it is due,
the rows and everything reports count stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from consent.keyring import KeyRing
from consent.retention import RetentionPolicy, consented_retention_until
from referral_gateway.config import Settings
from referral_gateway.domain.attendance import Attendance
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.entrypoints.jobs import (
    build_scheduler,
    retention_policy,
    run_identifiable_retention,
)
from referral_gateway.services.retention import erase_identifiable, erase_raw_messages
from referral_gateway.services.sharing import RevealedIdentity
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL, AttendanceStore
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import CASES
from referral_gateway.storage.consent_store import CONSENT
from referral_gateway.storage.inbox import INBOX, InboxStore
from referral_gateway.storage.views import feed_counts
from tests.consent_store.builders import (
    LEAD,
    T0,
    Seeded,
    arrival_event,
    declined,
    given,
    hl7_arrival,
    identity,
    not_approached,
    seed_referral,
    set_status,
    withdrawn,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
POLICY = RetentionPolicy()  # 7 days for declined, not approached, withdrawn, stale, voided


@pytest.fixture
def job(engine, keyring, audit):
    def run(now: datetime, policy: RetentionPolicy = POLICY):
        return erase_identifiable(engine, keyring, audit, policy, now=now)

    return run


def identity_kept(engine: Engine, seeded: Seeded) -> bool:
    with engine.connect() as conn:
        token = conn.execute(
            select(ATTENDANCE.c.identity_enc).where(ATTENDANCE.c.id == seeded.attendance_id)
        ).scalar_one()
    return token is not None


def report_facts(engine: Engine, seeded: Seeded) -> dict[str, Any]:
    """What the monthly report reads about a referral."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                REFERRAL.c.status,
                REFERRAL.c.site,
                REFERRAL.c.injury_category,
                REFERRAL.c.created_at,
                ATTENDANCE.c.age_at_arrival,
                ATTENDANCE.c.birth_year,
                ATTENDANCE.c.sex,
                ATTENDANCE.c.arrival_at,
                ATTENDANCE.c.codings_json,
                ATTENDANCE.c.nhs_number_hash,
            )
            .join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
            .where(REFERRAL.c.id == seeded.referral_id)
        ).one()
        outcomes = conn.execute(
            select(CONSENT.c.outcome, CONSENT.c.recorded_at).where(
                CONSENT.c.referral_id == seeded.referral_id
            )
        ).all()
    return dict(row._mapping) | {"consent": [tuple(o) for o in outcomes]}


def erase_entries(engine: Engine, audit: AuditStore) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (e.subject, e.why) for e in audit.entries(conn) if e.action.value == "retention_erase"
        ]


# -- declined, not approached, withdrawn, stale, voided -----------------------------------


def test_a_declined_candidate_loses_identity_seven_days_after_declining_and_counts_survive(
    engine, keyring, sharing, audit, job
):
    seeded = seed_referral(engine, keyring)
    declined_at = T0 + timedelta(hours=1)
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, declined(seeded.referral_id, by=LEAD), now=declined_at
    )
    facts_before = report_facts(engine, seeded)

    early = job(declined_at + 7 * DAY - MINUTE)
    kept = identity_kept(engine, seeded)
    due = job(declined_at + 7 * DAY)

    assert kept and early.referrals_erased == 0
    assert dict(due.referrals) == {"declined": 1}
    assert not identity_kept(engine, seeded)
    assert report_facts(engine, seeded) == facts_before
    assert erase_entries(engine, audit) == [(seeded.referral_id, "identifiable:declined")]


def test_not_approached_free_text_goes_with_the_identity(engine, keyring, sharing, job):
    seeded = seed_referral(engine, keyring)
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, not_approached(seeded.referral_id, by=LEAD), now=T0
    )

    job(T0 + 7 * DAY)

    with engine.connect() as conn:
        details, erased_at, outcome = conn.execute(
            select(CONSENT.c.details_enc, CONSENT.c.details_erased_at, CONSENT.c.outcome)
        ).one()
    assert not identity_kept(engine, seeded)
    assert details is None and erased_at == T0 + 7 * DAY
    assert outcome == "not_approached"


def test_a_stale_candidate_nobody_approached_goes_seven_days_after_detection(engine, keyring, job):
    seeded = seed_referral(engine, keyring)
    assert job(T0 + 7 * DAY - MINUTE).referrals_erased == 0
    assert dict(job(T0 + 7 * DAY).referrals) == {"stale_candidate": 1}
    assert not identity_kept(engine, seeded)


def test_a_voided_candidate_goes_after_the_configured_voided_period(engine, keyring, job):
    seeded = seed_referral(engine, keyring)
    voided_at = T0 + timedelta(hours=2)
    set_status(engine, seeded.referral_id, ReferralStatus.VOIDED, voided_at)
    policy = RetentionPolicy(voided_days=1)

    assert job(voided_at + DAY - MINUTE, policy).referrals_erased == 0
    assert dict(job(voided_at + DAY, policy).referrals) == {"voided": 1}


def test_withdrawn_consent_goes_seven_days_after_the_withdrawal(engine, keyring, sharing, job):
    seeded = seed_referral(engine, keyring)
    rid = seeded.referral_id
    sharing.record_consent_outcome(LEAD, rid, given(rid, by=LEAD), now=T0)
    sharing.record_consent_outcome(LEAD, rid, withdrawn(rid, by=LEAD), now=T0 + 3 * DAY)

    assert job(T0 + 10 * DAY - MINUTE).referrals_erased == 0
    assert dict(job(T0 + 10 * DAY).referrals) == {"withdrawn": 1}


def test_the_period_is_configurable(engine, keyring, sharing, job):
    seeded = seed_referral(engine, keyring)
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, declined(seeded.referral_id, by=LEAD), now=T0
    )
    assert dict(job(T0 + 2 * DAY, RetentionPolicy(declined_days=2)).referrals) == {"declined": 1}


def test_a_consent_after_erasure_reveals_that_nothing_is_left(engine, keyring, sharing, job):
    seeded = seed_referral(engine, keyring)
    rid = seeded.referral_id
    sharing.record_consent_outcome(LEAD, rid, declined(rid, by=LEAD), now=T0)
    job(T0 + 7 * DAY)
    sharing.record_consent_outcome(LEAD, rid, given(rid, by=LEAD), now=T0 + 8 * DAY)

    revealed = sharing.reveal_identity(LEAD, rid, now=T0 + 8 * DAY)

    assert isinstance(revealed, RevealedIdentity) and revealed.erased
    assert revealed.nhs_number is None and revealed.family_name is None


# -- consented ------------------------------------------------------------------------------


def test_consented_records_are_kept_while_support_goes_on(engine, keyring, sharing, job):
    seeded = seed_referral(engine, keyring)
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, given(seeded.referral_id, by=LEAD), now=T0
    )
    assert job(T0 + 3650 * DAY).referrals_erased == 0
    assert identity_kept(engine, seeded)


def test_a_closed_consented_record_of_a_sixteen_year_old_is_kept_until_their_25th_birthday(
    engine, keyring, sharing, job
):
    seeded = seed_referral(engine, keyring)  # born 23 July 2009, 16 on the night
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, given(seeded.referral_id, by=LEAD), now=T0
    )
    set_status(engine, seeded.referral_id, ReferralStatus.CLOSED, T0 + 60 * DAY)
    birthday = datetime(2034, 7, 23, tzinfo=UTC)

    assert job(birthday - MINUTE).referrals_erased == 0
    assert dict(job(birthday).referrals) == {"until_25th_birthday": 1}


def test_a_closed_consented_record_without_a_birth_date_is_kept_and_reported(
    engine, keyring, sharing, job
):
    seeded = seed_referral(engine, keyring, patient=identity(birth_date=None))
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, given(seeded.referral_id, by=LEAD), now=T0
    )
    set_status(engine, seeded.referral_id, ReferralStatus.CLOSED, T0 + DAY)

    result = job(T0 + 3650 * DAY)

    assert result.needs_birth_date == (seeded.referral_id,)
    assert identity_kept(engine, seeded)


def test_an_adults_consented_record_is_kept_8_years_from_the_day_the_case_was_closed(
    engine, keyring, sharing, job
):
    born = date(1999, 5, 2)  # 26 on the night: the adults' rule
    seeded = seed_referral(engine, keyring, patient=identity(birth_date=born))
    sharing.record_consent_outcome(
        LEAD, seeded.referral_id, given(seeded.referral_id, by=LEAD), now=T0
    )
    closed = T0 + 60 * DAY
    with engine.begin() as conn:  # what closing the case records
        conn.execute(
            insert(CASES).values(
                referral_id=seeded.referral_id, closed_at=closed, updated_at=closed
            )
        )
    # the referral row itself changes later (a late discharge message, say)
    set_status(engine, seeded.referral_id, ReferralStatus.CLOSED, closed + 300 * DAY)
    due = consented_retention_until(born, closed.date(), adult_years=8)
    midnight = datetime.combine(due, datetime.min.time(), UTC)

    assert job(midnight - DAY).referrals_erased == 0
    assert job(midnight + DAY).referrals_erased == 1


# -- attendances that never became candidates, raw messages ----------------------------------


def test_an_attendance_that_never_became_a_candidate_loses_identity_after_the_voided_period(
    engine, keyring, audit, job
):
    store = AttendanceStore(keyring)
    with engine.begin() as conn:
        attendance_id = store.save(
            conn,
            store.row_values(
                visit_key="V-NOT",
                attendance=Attendance.from_event(arrival_event("V-NOT", codings=(), free_text=())),
                age_at_arrival=16,
                detection_rule="no_assault_signal",
                detection={},
                nhs_number_valid=True,
                message_id=0,
                now=T0,
            ),
        )
    candidate = seed_referral(engine, keyring, visit_number="V-CAND")
    not_candidate = Seeded("", attendance_id, 0)

    early = job(T0 + 7 * DAY - MINUTE, RetentionPolicy(stale_candidate_days=30))
    due = job(T0 + 7 * DAY, RetentionPolicy(stale_candidate_days=30))

    assert early.attendances == 0 and due.attendances == 1
    assert not identity_kept(engine, not_candidate)
    assert identity_kept(engine, candidate)  # a candidate follows its referral's rules
    assert ("attendance", f"identifiable:not_candidate:1:ids={attendance_id}-{attendance_id}") in (
        erase_entries(engine, audit)
    )


def mark(engine: Engine, message_id: int, state: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(INBOX).where(INBOX.c.id == message_id).values(state=state))


def payload_kept(engine: Engine, message_id: int) -> bool:
    with engine.connect() as conn:
        token = conn.execute(
            select(INBOX.c.payload_enc).where(INBOX.c.id == message_id)
        ).scalar_one()
    return token is not None


def test_raw_messages_go_thirty_days_after_receipt_once_processed(engine, keyring, audit):
    stored = InboxStore(engine, keyring).store_batch(
        [hl7_arrival(f"M{i}", received_at=T0) for i in range(4)]
    )
    processed, filtered, pending, errored = (s.message_id for s in stored)
    mark(engine, processed, "processed")
    mark(engine, filtered, "filtered")
    mark(engine, errored, "error")
    counts_before = feed_counts(engine)

    early = erase_raw_messages(engine, audit, POLICY, now=T0 + 30 * DAY - MINUTE)
    due = erase_raw_messages(engine, audit, POLICY, now=T0 + 30 * DAY)
    again = erase_raw_messages(engine, audit, POLICY, now=T0 + 31 * DAY)

    assert (early, due, again) == (0, 2, 0)
    assert [payload_kept(engine, m) for m in (processed, filtered, pending, errored)] == [
        False,
        False,
        True,
        True,
    ]
    assert feed_counts(engine) == counts_before
    with engine.connect() as conn:
        assert conn.execute(select(INBOX.c.id)).all() != []  # the rows stay
    assert erase_entries(engine, audit) == [
        ("inbound_message", f"raw_message:2:ids={processed}-{filtered}")
    ]


# -- scheduling ------------------------------------------------------------------------------


@dataclass
class FakeGateway:
    """What the jobs read from the gateway."""

    settings: Settings
    engine: Engine
    keyring: KeyRing
    audit: AuditStore
    clock: Any


def test_the_scheduler_runs_both_retention_jobs_every_interval(engine, keyring, audit):
    gateway = FakeGateway(Settings(retention_interval_minutes=15), engine, keyring, audit, None)

    scheduler = build_scheduler(gateway)

    jobs = {job.id: job for job in scheduler.get_jobs() if job.id.startswith("retention")}
    assert set(jobs) == {"retention_identifiable", "retention_raw_messages"}
    assert all(j.trigger.interval == timedelta(minutes=15) for j in jobs.values())


def test_the_scheduled_job_erases_with_the_settings_policy_and_the_gateway_clock(
    engine, keyring, audit
):
    seeded = seed_referral(engine, keyring)
    settings = Settings(retention_identifiable_days=3)
    gateway = FakeGateway(settings, engine, keyring, audit, lambda: T0 + 3 * DAY)

    run_identifiable_retention(gateway, retention_policy(settings))

    assert not identity_kept(engine, seeded)
