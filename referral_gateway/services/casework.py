"""Casework as units of work: load the referral, ask the rules, write, announce.

Every function takes the signed-in `StaffUser` and a referral id. A referral that does not
exist, or whose approach card the consent policy does not show this user (another site, a
role that reads no referral), raises `NotFound`: the web answers 404 either way, so a
referral's existence leaks nowhere. What the rules refuse comes back as a value
(`CaseRefusal`; the consent module's `Refusal`) for the form to show.

Consent outcomes, identifiable details and the consent history go through
`services.sharing.Sharing`, which asks `consent.policy.decide`, writes the consent records and
audits every reveal and refusal. This module adds what casework owns: who the referral is
assigned to (the policy's need-to-know), contact attempts, support, onward referrals, notes,
closure, follow-up, and `escalate_untouched` (the plain function the scheduled escalation
job in `referral_gateway.entrypoints.jobs` runs).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from consent.audit import AuditAction
from consent.keyring import KeyRing
from consent.policy import ConsentDecision, FieldGroup, Purpose, ReferralView, decide
from consent.records import ConsentProposal, ConsentRecord, Refusal
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.casework import (
    Case,
    CaseRefusal,
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
    reopen,
    start_support,
)
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.dismissal import mark_not_assault
from referral_gateway.domain.manual import MANUAL_RULE, ManualReferral
from referral_gateway.services.errors import NotFound
from referral_gateway.services.sharing import ConsentHistoryView, RevealedIdentity, Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.attendances import AttendanceStore, referral_row
from referral_gateway.storage.casework import (
    CaseNote,
    CaseStore,
    LoadedCase,
    StoredContact,
    StoredOnward,
    mark_escalations,
)
from referral_gateway.storage.dismissals import MarkStore
from referral_gateway.storage.errors import ConcurrentChange
from referral_gateway.storage.queue import ApproachCard, approach_card
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

T = TypeVar("T")
# what the referral page reads, in one audited reveal
DETAIL_GROUPS = (
    FieldGroup.IDENTITY,
    FieldGroup.CONTACT,
    FieldGroup.CLINICAL_NOTES,
    FieldGroup.CASE_NOTES,
)


@dataclass(frozen=True)
class QueueEvent:
    """What the live queue hears: a referral id, its site and for news from the ED one word
    (a `ReferralUpdate`: discharged, back_in_department, cancelled, moved); nothing
    identifiable."""

    kind: str  # "new" | "changed" | "escalated"
    referral_id: str
    site: str
    change: str = ""  # what changed, when the ED changed it


Publish = Callable[[QueueEvent], None]
ConsentOutcome = ConsentRecord | Refusal | CaseRefusal | ConsentDecision


@dataclass(frozen=True)
class Change:
    """A case's new state, and anything else to write with it in the same transaction."""

    case: Case
    write: Callable[[Connection], None] | None = None
    in_unit: Callable[[UnitOfWork], None] | None = None  # e.g. an audit entry


@dataclass(frozen=True)
class Unlocked:
    """What the referral page may show beyond the approach card. Never logged."""

    identity: RevealedIdentity | None  # None: refused (see `refusal`)
    refusal: ConsentDecision | None
    notes: list[CaseNote] | None  # None: not allowed

    def __repr__(self) -> str:
        return f"Unlocked(identity={self.identity is not None}, notes={self.notes is not None})"

    @property
    def message(self) -> str:
        """Why identifiable details are shown, or why not."""
        if self.refusal is not None:
            return self.refusal.message
        if self.identity is not None and self.identity.erased:
            return "The identifiable details were erased under the retention rules."
        if self.identity is not None and self.identity.basis.value == "safeguarding_override":
            return "A safeguarding override is in place."
        return "Consent is given."


@dataclass(frozen=True)
class ReferralDetail:
    card: ApproachCard
    consent: ConsentHistoryView
    contacts: list[StoredContact]
    onwards: list[StoredOnward]
    note_count: int
    unlocked: Unlocked
    names: dict[str, str] = field(default_factory=dict)  # staff user id -> display name

    @property
    def case(self) -> Case:
        return self.card.case

    @property
    def history(self) -> tuple[ConsentRecord, ...]:
        return self.consent.records


def run_unit(engine: Engine, work: Callable[[UnitOfWork], T], *, attempts: int = 6) -> T:
    """Run `work` in one unit of work; start again when a concurrent writer got there first
    (a compare-and-set that missed, a taken `seq`, a busy database)."""
    for attempt in range(attempts):
        try:
            with unit_of_work(engine) as uow:
                return work(uow)
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
        clock: Clock,
        *,
        accounts: AccountStore,
        sharing: Sharing,
        publish: Publish,
        local_zone: tzinfo,
        on_assigned: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_assigned = on_assigned  # (referral id, site, assignee id): the alerts hear
        self.clock = clock
        self.accounts = accounts
        self.sharing = sharing
        self.publish = publish
        self.zone = local_zone
        self.cases = CaseStore(keyring)
        self.attendances = AttendanceStore(keyring)
        self.marks = MarkStore(keyring)

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()

    # -- reading ---------------------------------------------------------------------------
    def shows_card(
        self, user: StaffUser, case: Case, purpose: Purpose = Purpose.DETAIL_VIEW
    ) -> bool:
        """Whether the consent policy shows `user` this referral's approach card."""
        view = ReferralView(case.referral_id, case.site, case.assigned_to)
        decision = decide(
            user.as_actor(), view, FieldGroup.APPROACH_CARD, purpose, (), now=self.clock()
        )
        return user.active and decision.allowed and may_see(user, case.site)

    def _visible(self, conn: Connection, user: StaffUser, referral_id: str) -> LoadedCase:
        loaded = self.cases.load(conn, referral_id)
        if loaded is None or not self.shows_card(user, loaded.case):
            raise NotFound("no such referral")
        return loaded

    def card(self, user: StaffUser, referral_id: str) -> ApproachCard:
        with self.engine.connect() as conn:
            self._visible(conn, user, referral_id)
            card = approach_card(conn, referral_id, self.attendances.keyring)
        if card is None:
            raise NotFound("no such referral")
        return card

    def detail(self, user: StaffUser, referral_id: str) -> ReferralDetail:
        """Everything the referral page shows. The identifiable groups are asked for in one
        reveal through the sharing service, which audits it (or the refusal)."""
        now = self.clock()
        actor = user.as_actor()
        with self.engine.connect() as conn:
            self._visible(conn, user, referral_id)
            card = approach_card(conn, referral_id, self.attendances.keyring)
            contacts = self.cases.contacts(conn, referral_id)
            onwards = self.cases.onwards(conn, referral_id)
            note_count = self.cases.note_count(conn, referral_id)
        if card is None:
            raise NotFound("no such referral")
        consent = self.sharing.consent_history(actor, referral_id, now=now)
        if isinstance(consent, ConsentDecision):
            raise NotFound("no such referral")
        revealed = self.sharing.reveal_identity(
            actor, referral_id, Purpose.DETAIL_VIEW, now=now, groups=DETAIL_GROUPS
        )
        if isinstance(revealed, ConsentDecision):
            unlocked = Unlocked(None, revealed, None)
        else:
            with self.engine.connect() as conn:
                notes = self.cases.notes(conn, referral_id)
            unlocked = Unlocked(revealed, None, notes)
        detail = ReferralDetail(card, consent, contacts, onwards, note_count, unlocked)
        people = {r.recorded_by for r in detail.history}
        people |= {c.attempt.recorded_by for c in contacts}
        people |= {o.onward.recorded_by for o in onwards}
        people |= {n.author for n in unlocked.notes or []}
        if card.case.assigned_to:
            people.add(card.case.assigned_to)
        detail.names.update(self.accounts.names(sorted(people)))
        return detail

    # -- claiming --------------------------------------------------------------------------
    def _change(
        self,
        user: StaffUser,
        referral_id: str,
        decide_change: Callable[[Connection, LoadedCase], Change | Case | CaseRefusal],
    ) -> CaseRefusal | None:
        now = self.clock()

        def work(uow: UnitOfWork) -> tuple[CaseRefusal | None, str]:
            loaded = self._visible(uow.conn, user, referral_id)
            result = decide_change(uow.conn, loaded)
            if isinstance(result, CaseRefusal):
                return result, loaded.case.site
            change = result if isinstance(result, Change) else Change(result)
            if change.case != loaded.case:
                self.cases.save(uow.conn, loaded, change.case, by=user.id, now=now)
            if change.write is not None:
                change.write(uow.conn)
            if change.in_unit is not None:
                change.in_unit(uow)
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
        sites: list[str] = []

        def decide(_c: Connection, loaded: LoadedCase) -> Case | CaseRefusal:
            sites.append(loaded.case.site)
            return assign(loaded.case, user, assignee, now=self.clock())

        refusal = self._change(user, referral_id, decide)
        tell = self.on_assigned
        if refusal is None and tell is not None and assignee is not None and assignee.id != user.id:
            tell(referral_id, sites[-1], assignee.id)
        return refusal

    # -- the approach ----------------------------------------------------------------------
    def record_consent(
        self, user: StaffUser, referral_id: str, proposal: ConsentProposal
    ) -> ConsentOutcome:
        """The outcome of the approach, through the sharing service (record, status, audit),
        in the same transaction as claiming the referral for the recorder when nobody had."""
        now = self.clock()

        def work(
            uow: UnitOfWork,
        ) -> tuple[ConsentRecord | Refusal | CaseRefusal | ConsentDecision, str]:
            loaded = self._visible(uow.conn, user, referral_id)
            refusal = may_record_consent(loaded.case, user)
            if refusal is not None:
                return refusal, loaded.case.site
            result = self.sharing.record_consent_outcome(
                user.as_actor(), referral_id, proposal, now=now, uow=uow
            )
            if isinstance(result, ConsentRecord) and loaded.case.assigned_to is None:
                recorded = self.cases.load(uow.conn, referral_id)
                assert recorded is not None
                mine = replace(recorded.case, assigned_to=user.id, claimed_at=now)
                self.cases.save(uow.conn, recorded, mine, by=user.id, now=now)
            return result, loaded.case.site

        result, site = run_unit(self.engine, work)
        if isinstance(result, ConsentRecord):
            self.publish(QueueEvent("changed", referral_id, site))
        return result

    # -- after the approach ----------------------------------------------------------------
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
            return Change(loaded.case, lambda c: self.cases.add_contact(c, attempt, now=now))

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
            return Change(loaded.case, lambda c: self.cases.add_onward(c, onward, now=now))

        return self._change(user, referral_id, decide_change)

    def add_note(self, user: StaffUser, referral_id: str, text: str) -> CaseRefusal | None:
        """Case notes are identifiable: writing one needs what reading them needs."""
        now = self.clock()

        def decide_change(conn: Connection, loaded: LoadedCase) -> Change | CaseRefusal:
            body = check_note(loaded.case, user, text)
            if isinstance(body, CaseRefusal):
                return body
            history = self.sharing.consents.history(conn, referral_id)
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

    def reopen(self, user: StaffUser, referral_id: str) -> CaseRefusal | None:
        """A team lead reopens a closed referral; audited (who, which referral, the closure
        it undid) in the same transaction."""
        now = self.clock()

        def work(uow: UnitOfWork) -> tuple[CaseRefusal | None, str]:
            loaded = self._visible(uow.conn, user, referral_id)
            history = self.sharing.consents.history(uow.conn, referral_id)
            last = history[-1].outcome if history else None
            result = reopen(loaded.case, user, last_consent=last)
            if isinstance(result, CaseRefusal):
                return result, loaded.case.site
            self.cases.save(uow.conn, loaded, result, by=user.id, now=now)
            undone = loaded.case.closure_outcome
            self.sharing.audit.append(
                uow,
                at=now,
                actor=user.id,
                action=AuditAction.CASE_REOPENED,
                subject=referral_id,
                why=f"closed:{undone.value if undone else 'unknown'}->{result.status.value}",
            )
            return None, loaded.case.site

        refusal, site = run_unit(self.engine, work)
        if refusal is None:
            self.publish(QueueEvent("changed", referral_id, site))
        return refusal

    def record_follow_up(
        self, user: StaffUser, referral_id: str, *, outcome: str
    ) -> CaseRefusal | None:
        now = self.clock()
        return self._change(
            user,
            referral_id,
            lambda _c, loaded: record_follow_up(loaded.case, user, outcome=outcome, now=now),
        )

    # -- not an assault ----------------------------------------------------------------------
    def mark_not_assault(
        self, user: StaffUser, referral_id: str, *, reason: str, note: str
    ) -> CaseRefusal | None:
        """A youth worker's "not an assault" (domain.dismissal): the referral leaves the open
        list, the mark is kept (its note encrypted), and the audit trail records who and
        the reason, in one transaction."""
        now = self.clock()

        def decide_change(_conn: Connection, loaded: LoadedCase) -> Change | CaseRefusal:
            result = mark_not_assault(loaded.case, user, reason=reason, note=note, now=now)
            if isinstance(result, CaseRefusal):
                return result
            case, mark = result

            def audit(uow: UnitOfWork) -> None:
                self.sharing.audit.append(
                    uow,
                    at=now,
                    actor=user.id,
                    action=AuditAction.NOT_ASSAULT_MARK,
                    subject=referral_id,
                    why=mark.reason.value,
                )

            return Change(case, write=lambda conn: self.marks.add(conn, mark), in_unit=audit)

        return self._change(user, referral_id, decide_change)

    # -- manual referrals ------------------------------------------------------------------
    def create_manual(self, user: StaffUser, manual: ManualReferral) -> str:
        """Store a clinician-identified young person as an attendance and a candidate
        referral, as the feeds do, put it on the queue and in the name of the worker who
        raised it. Returns the referral id."""
        now = self.clock()
        attendance = manual.attendance

        def work(uow: UnitOfWork) -> str:
            values = self.attendances.row_values(
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
                message_id=None,  # it came from no inbound message
                now=now,
            )
            row = referral_row(
                referral_id=str(uuid.uuid4()),
                attendance_id=self.attendances.save(uow.conn, values),
                site=attendance.site,
                detection_rule=MANUAL_RULE,
                reasons=manual.reasons(),
                injury_category=manual.concern.value,
                valueset_version="",
                now=now,
            )
            self.attendances.insert_referrals(uow.conn, [row])
            return str(row["id"])

        referral_id = run_unit(self.engine, work)
        self.publish(QueueEvent("new", referral_id, attendance.site))
        self.claim(user, referral_id)  # whoever raised it has it (the form is for caseworkers)
        return referral_id


def escalate_untouched(engine: Engine, *, now: datetime, after: timedelta) -> list[tuple[str, str]]:
    """Mark the new referrals nobody claimed within `after` of detection as escalated, each
    once; returns the (referral id, site) of those escalated now, for the team leads to hear
    of. Safe to run at any time, from any process."""
    cutoff = escalation_cutoff(now, after)
    return run_unit(engine, lambda uow: mark_escalations(uow.conn, cutoff=cutoff, now=now))
