"""Casework as units of work: load the referral, ask the rules, write, audit, announce.

Every function takes the signed-in `StaffUser` and a referral id. A referral that does not
exist, or that belongs to a site the user does not work for, raises `NotFound` (the web
answers 404 either way, so a referral's existence leaks nowhere). What the rules refuse
comes back as a value (`CaseRefusal`, or the consent module's `Refusal`) for the form to show.

Identifiable data are decrypted only after `consent.policy.decide` allowed them, and every
such decision is written to the audit trail in the same transaction as the read.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from consent.audit import AuditAction
from consent.keyring import KeyRing
from consent.policy import ConsentDecision, FieldGroup, Purpose, ReferralView, decide
from consent.records import (
    ConsentProposal,
    ConsentRecord,
    Refusal,
    current_basis,
    record_consent,
)
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.attendance import PatientIdentity
from referral_gateway.domain.casework import (
    Case,
    CaseRefusal,
    after_consent_outcome,
    assign,
    check_contact,
    check_note,
    check_onward,
    claim,
    close,
    escalation_cutoff,
    may_record_consent,
    may_see,
    record_follow_up,
    release,
    start_support,
)
from referral_gateway.domain.manual import MANUAL_RULE, ManualReferral
from referral_gateway.errors import NotFound
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.casework import (
    CaseNote,
    CaseStore,
    ConcurrentChange,
    LoadedCase,
    StoredContact,
    StoredOnward,
)
from referral_gateway.storage.consent_store import AuditTrail, ConsentStore
from referral_gateway.storage.queue import ApproachCard, approach_card

log = logging.getLogger(__name__)

T = TypeVar("T")
NO_MESSAGE = 0  # a manual referral's attendance came from no inbound message
IDENTIFIABLE_GROUPS = (
    FieldGroup.IDENTITY,
    FieldGroup.CONTACT,
    FieldGroup.CLINICAL_NOTES,
    FieldGroup.CASE_NOTES,
)


@dataclass(frozen=True)
class QueueEvent:
    """What the live queue hears: a referral id and its site, nothing identifiable."""

    kind: str  # "new" | "changed" | "escalated"
    referral_id: str
    site: str


Publish = Callable[[QueueEvent], None]


@dataclass(frozen=True)
class Change:
    """A case's new state, and anything else to write with it in the same transaction."""

    case: Case
    write: Callable[[Connection], None] | None = None


@dataclass(frozen=True)
class Unlocked:
    """Identifiable details the policy allowed, by group. Never logged."""

    identity: PatientIdentity | None
    clinical_text: tuple[str, ...] | None
    notes: list[CaseNote] | None
    decisions: dict[FieldGroup, ConsentDecision]

    def __repr__(self) -> str:
        allowed = sorted(g.value for g, d in self.decisions.items() if d.allowed)
        return f"Unlocked(allowed={allowed})"

    @property
    def any_allowed(self) -> bool:
        return any(d.allowed for d in self.decisions.values())

    @property
    def message(self) -> str:
        """Why identity is shown, or why not."""
        return self.decisions[FieldGroup.IDENTITY].message


@dataclass(frozen=True)
class ReferralDetail:
    card: ApproachCard
    history: list[ConsentRecord]
    contacts: list[StoredContact]
    onwards: list[StoredOnward]
    note_count: int
    unlocked: Unlocked
    names: dict[str, str] = field(default_factory=dict)  # staff user id -> display name

    @property
    def case(self) -> Case:
        return self.card.case

    @property
    def latest_consent(self) -> ConsentRecord | None:
        return self.history[-1] if self.history else None


def run_unit(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 6) -> T:
    """Run `work` in one transaction; start again when a concurrent writer got there first
    (a compare-and-set that missed, a taken audit or consent `seq`, SQLite busy)."""
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (ConcurrentChange, IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1:
                raise
            log.info("retrying a unit of work after %s", type(exc).__name__)
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


class Casework:
    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        clock: Callable[[], datetime],
        *,
        accounts: AccountStore,
        publish: Publish,
        local_zone: tzinfo,
        escalate_after: timedelta = timedelta(minutes=20),
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.accounts = accounts
        self.publish = publish
        self.zone = local_zone
        self.escalate_after = escalate_after
        self.cases = CaseStore(keyring)
        self.consents = ConsentStore(keyring)
        self.audit = AuditTrail()
        self.attendances = AttendanceStore(keyring)

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()

    # -- reading ---------------------------------------------------------------------------
    def _visible(self, conn: Connection, user: StaffUser, referral_id: str) -> LoadedCase:
        """The referral, if the consent policy lets `user` see its approach card at all."""
        loaded = self.cases.load(conn, referral_id)
        if loaded is None or not self.shows_card(user, loaded.case):
            raise NotFound("no such referral")
        return loaded

    def shows_card(
        self, user: StaffUser, case: Case, purpose: Purpose = Purpose.DETAIL_VIEW
    ) -> bool:
        view = ReferralView(case.referral_id, case.site, case.assigned_to)
        decision = decide(
            user.as_actor(), view, FieldGroup.APPROACH_CARD, purpose, (), now=self.clock()
        )
        return user.active and decision.allowed and may_see(user, case.site)

    def card(self, user: StaffUser, referral_id: str) -> ApproachCard:
        with self.engine.connect() as conn:
            self._visible(conn, user, referral_id)
            card = approach_card(conn, referral_id)
        if card is None:
            raise NotFound("no such referral")
        return card

    def detail(self, user: StaffUser, referral_id: str) -> ReferralDetail:
        """Everything the referral page shows. Asks the policy about each identifiable group
        and audits the decision (allowed: view_identifiable; refused: view_refused)."""
        now = self.clock()

        def work(conn: Connection) -> ReferralDetail:
            loaded = self._visible(conn, user, referral_id)
            card = approach_card(conn, referral_id)
            if card is None:
                raise NotFound("no such referral")
            history = self.consents.history(conn, referral_id)
            unlocked = self._unlock(conn, user, loaded, history, now)
            contacts = self.cases.contacts(conn, referral_id)
            onwards = self.cases.onwards(conn, referral_id)
            return ReferralDetail(
                card=card,
                history=history,
                contacts=contacts,
                onwards=onwards,
                note_count=self.cases.note_count(conn, referral_id),
                unlocked=unlocked,
            )

        detail = run_unit(self.engine, work)
        people = {r.recorded_by for r in detail.history}
        people |= {c.attempt.recorded_by for c in detail.contacts}
        people |= {o.onward.recorded_by for o in detail.onwards}
        people |= {n.author for n in detail.unlocked.notes or []}
        if detail.case.assigned_to:
            people.add(detail.case.assigned_to)
        detail.names.update(self.accounts.names(sorted(people)))
        return detail

    def _unlock(
        self,
        conn: Connection,
        user: StaffUser,
        loaded: LoadedCase,
        history: list[ConsentRecord],
        now: datetime,
    ) -> Unlocked:
        view = ReferralView(loaded.case.referral_id, loaded.case.site, loaded.case.assigned_to)
        decisions = {
            group: decide(user.as_actor(), view, group, Purpose.DETAIL_VIEW, history, now=now)
            for group in IDENTIFIABLE_GROUPS
        }
        allowed = [g.value for g, d in decisions.items() if d.allowed]
        if allowed:
            self.audit.append(
                conn,
                at=now,
                actor=user.id,
                action=AuditAction.VIEW_IDENTIFIABLE,
                subject=loaded.case.referral_id,
                why="detail_view:" + "+".join(allowed),
            )
        else:
            self.audit.append(
                conn,
                at=now,
                actor=user.id,
                action=AuditAction.VIEW_REFUSED,
                subject=loaded.case.referral_id,
                why="detail_view:" + decisions[FieldGroup.IDENTITY].reason.value,
            )
        identity = clinical = notes = None
        if decisions[FieldGroup.IDENTITY].allowed or decisions[FieldGroup.CONTACT].allowed:
            _, attendance = self.attendances.load_by_id(conn, loaded.attendance_id)
            full = attendance.patient
            identity = PatientIdentity(
                nhs_number=full.nhs_number if decisions[FieldGroup.IDENTITY].allowed else None,
                family_name=full.family_name if decisions[FieldGroup.IDENTITY].allowed else None,
                given_names=full.given_names if decisions[FieldGroup.IDENTITY].allowed else None,
                birth_date=full.birth_date if decisions[FieldGroup.IDENTITY].allowed else None,
                address=full.address if decisions[FieldGroup.CONTACT].allowed else None,
                phone=full.phone if decisions[FieldGroup.CONTACT].allowed else None,
            )
            if decisions[FieldGroup.CLINICAL_NOTES].allowed:
                clinical = attendance.free_text
        if decisions[FieldGroup.CASE_NOTES].allowed:
            notes = self.cases.notes(conn, loaded.case.referral_id)
        return Unlocked(identity, clinical, notes, decisions)

    # -- claiming --------------------------------------------------------------------------
    def _change(
        self,
        user: StaffUser,
        referral_id: str,
        decide_change: Callable[[Connection, LoadedCase], Change | Case | CaseRefusal],
    ) -> CaseRefusal | None:
        now = self.clock()

        def work(conn: Connection) -> tuple[CaseRefusal | None, str]:
            loaded = self._visible(conn, user, referral_id)
            result = decide_change(conn, loaded)
            if isinstance(result, CaseRefusal):
                return result, loaded.case.site
            change = result if isinstance(result, Change) else Change(result)
            if change.case != loaded.case:
                self.cases.save(conn, loaded, change.case, by=user.id, now=now)
            if change.write is not None:
                change.write(conn)
            return None, loaded.case.site

        refusal, site = run_unit(self.engine, work)
        if refusal is None:
            self.publish(QueueEvent("changed", referral_id, site))
        return refusal

    def claim(self, user: StaffUser, referral_id: str) -> CaseRefusal | None:
        return self._change(
            user, referral_id, lambda _c, loaded: claim(loaded.case, user, now=self.clock())
        )

    def release(self, user: StaffUser, referral_id: str) -> CaseRefusal | None:
        return self._change(user, referral_id, lambda _c, loaded: release(loaded.case, user))

    def assign(self, user: StaffUser, referral_id: str, assignee_id: str) -> CaseRefusal | None:
        assignee = self.accounts.get(assignee_id) if assignee_id else None
        return self._change(
            user,
            referral_id,
            lambda _c, loaded: assign(loaded.case, user, assignee, now=self.clock()),
        )

    # -- consent ---------------------------------------------------------------------------
    def record_consent(
        self, user: StaffUser, referral_id: str, proposal: ConsentProposal
    ) -> ConsentRecord | Refusal | CaseRefusal:
        """Append a consent record (the rules of `consent.records`), move the referral on,
        and audit the change (and the unlock, when a basis for sharing comes into force)."""
        now = self.clock()

        def work(conn: Connection) -> tuple[ConsentRecord | Refusal | CaseRefusal, str]:
            loaded = self._visible(conn, user, referral_id)
            refusal = may_record_consent(loaded.case, user)
            if refusal is not None:
                return refusal, loaded.case.site
            history = self.consents.history(conn, referral_id)
            result = record_consent(history, proposal, now=now)
            if isinstance(result, Refusal):
                return result, loaded.case.site
            self.consents.append(conn, result)
            case = after_consent_outcome(loaded.case, user, result.outcome.value, now=now)
            if case != loaded.case:
                self.cases.save(conn, loaded, case, by=user.id, now=now)
            self.audit.append(
                conn,
                at=now,
                actor=user.id,
                action=AuditAction.CONSENT_CHANGE,
                subject=referral_id,
                why=f"consent:{result.outcome.value}",
            )
            before = current_basis(history)
            basis = current_basis([*history, result])
            if basis is not None and (before is None or before.kind is not basis.kind):
                self.audit.append(
                    conn,
                    at=now,
                    actor=user.id,
                    action=AuditAction.UNLOCK,
                    subject=referral_id,
                    why=f"basis:{basis.kind.value}",
                )
            return result, loaded.case.site

        result, site = run_unit(self.engine, work)
        if isinstance(result, ConsentRecord):
            self.publish(QueueEvent("changed", referral_id, site))
        return result

    # -- follow-up casework ----------------------------------------------------------------
    def log_contact(
        self,
        user: StaffUser,
        referral_id: str,
        *,
        at: datetime | None,
        method: str,
        outcome: str,
    ) -> CaseRefusal | None:
        now = self.clock()

        def decide_change(_conn: Connection, loaded: LoadedCase) -> Change | CaseRefusal:
            attempt = check_contact(
                loaded.case, user, at=at, method=method, outcome=outcome, now=now
            )
            if isinstance(attempt, CaseRefusal):
                return attempt
            return Change(loaded.case, lambda conn: self.cases.add_contact(conn, attempt, now=now))

        return self._change(user, referral_id, decide_change)

    def set_support(
        self, user: StaffUser, referral_id: str, *, tier: str, start_on: date | None
    ) -> CaseRefusal | None:
        today = self.today()
        return self._change(
            user,
            referral_id,
            lambda _c, loaded: start_support(
                loaded.case, user, tier=tier, start_on=start_on, today=today
            ),
        )

    def add_onward(
        self,
        user: StaffUser,
        referral_id: str,
        *,
        kind: str,
        service_type: str,
        on: date | None,
    ) -> CaseRefusal | None:
        now = self.clock()
        today = self.today()

        def decide_change(_conn: Connection, loaded: LoadedCase) -> Change | CaseRefusal:
            onward = check_onward(
                loaded.case, user, kind=kind, service_type=service_type, on=on, today=today
            )
            if isinstance(onward, CaseRefusal):
                return onward
            return Change(loaded.case, lambda conn: self.cases.add_onward(conn, onward, now=now))

        return self._change(user, referral_id, decide_change)

    def add_note(self, user: StaffUser, referral_id: str, text: str) -> CaseRefusal | None:
        """Case notes are identifiable: writing one needs the same basis as reading them."""
        now = self.clock()

        def decide_change(conn: Connection, loaded: LoadedCase) -> Change | CaseRefusal:
            body = check_note(loaded.case, user, text)
            if isinstance(body, CaseRefusal):
                return body
            history = self.consents.history(conn, referral_id)
            view = ReferralView(referral_id, loaded.case.site, loaded.case.assigned_to)
            decision = decide(
                user.as_actor(), view, FieldGroup.CASE_NOTES, Purpose.DETAIL_VIEW, history, now=now
            )
            if not decision.allowed:
                return CaseRefusal({"note": decision.message})
            return Change(
                loaded.case,
                lambda c: self.cases.add_note(c, referral_id, body, author=user.id, now=now),
            )

        return self._change(user, referral_id, decide_change)

    def close(self, user: StaffUser, referral_id: str, *, outcome: str) -> CaseRefusal | None:
        now = self.clock()
        today = self.today()
        return self._change(
            user,
            referral_id,
            lambda _c, loaded: close(loaded.case, user, outcome=outcome, now=now, today=today),
        )

    def record_follow_up(
        self, user: StaffUser, referral_id: str, *, outcome: str
    ) -> CaseRefusal | None:
        now = self.clock()
        return self._change(
            user,
            referral_id,
            lambda _c, loaded: record_follow_up(loaded.case, user, outcome=outcome, now=now),
        )

    # -- manual referrals ------------------------------------------------------------------
    def create_manual(self, user: StaffUser, manual: ManualReferral) -> str:
        """Store a clinician-identified young person as an attendance and a candidate
        referral, like the feeds do, and put it on the queue. Returns the referral id."""
        now = self.clock()
        attendance = manual.attendance

        def work(conn: Connection) -> str:
            attendance_id = self.attendances.save(
                conn,
                existing_id=None,
                visit_key=f"manual:{uuid.uuid4()}",
                attendance=attendance,
                age_at_arrival=manual.age_at_arrival,
                detection_rule=MANUAL_RULE,
                detection={
                    "candidate": True,
                    "rule": MANUAL_RULE,
                    "reasons": manual.reasons(),
                    "injury_category": manual.concern.value,
                    "referred_by": user.id,
                },
                nhs_number_valid=manual.nhs_number_valid,
                message_id=NO_MESSAGE,
                now=now,
            )
            return self.attendances.create_referral(
                conn,
                attendance_id=attendance_id,
                site=attendance.site,
                detection_rule=MANUAL_RULE,
                reasons=manual.reasons(),
                injury_category=manual.concern.value,
                valueset_version="",
                now=now,
            )

        referral_id = run_unit(self.engine, work)
        self.publish(QueueEvent("new", referral_id, attendance.site))
        return referral_id

    # -- escalation ------------------------------------------------------------------------
    def escalate_untouched(self) -> list[tuple[str, str]]:
        """Mark referrals nobody claimed within `escalate_after` and tell the team leads."""
        now = self.clock()
        cutoff = escalation_cutoff(now, self.escalate_after)
        done = run_unit(
            self.engine, lambda conn: self.cases.mark_escalations(conn, cutoff=cutoff, now=now)
        )
        for referral_id, site in done:
            self.publish(QueueEvent("escalated", referral_id, site))
        return done
