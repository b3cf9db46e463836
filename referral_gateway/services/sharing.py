"""Consent outcomes and access to identifiable data: the service the web queue, the JSON API,
exports and outbound delivery call. Every exit asks `consent.policy.decide`.

    sharing = Sharing(engine, keyring, audit, assignments=lookup)
    sharing.record_consent_outcome(actor, referral_id, proposal, now=now)
        -> ConsentRecord | Refusal | ConsentDecision
    sharing.reveal_identity(actor, referral_id, Purpose.DETAIL_VIEW, now=now)
        -> RevealedIdentity | ConsentDecision
    sharing.consent_history(actor, referral_id, now=now) -> ConsentHistoryView | ConsentDecision
    sharing.authorise(actor, referral_id, group, purpose, now=now) -> ConsentDecision
    sharing.queue_decisions(actor, referral_ids, now=now) -> dict[str, ConsentDecision]

What comes back:
- `ConsentRecord`: the outcome was recorded (record + audit entries + referral status, in one
  transaction).
- `Refusal` (consent.records): the proposal needs correcting; `problems` maps form fields to
  what to do. Nothing was written.
- `ConsentDecision` with `allowed=False` (consent.policy): the actor may not do this;
  `decision.message` is a sentence to show. Refused attempts at identifiable data are audited.
- `NotFound` (referral_gateway.services.errors) is raised for an unknown referral id.

Audit entries written (ids and fixed words only):
- `consent_change` for every recorded outcome (why: the outcome, and the giver if any);
- `unlock` when a basis for sharing comes into force (why: consent_given/safeguarding_override);
- `view_identifiable` / `export` / `outbound_delivery` for every allowed reveal, by purpose
  (why: purpose, the basis relied on, the field groups);
- `view_refused` for every refused attempt at an identifiable group (why: purpose, reason).

Who is assigned to a referral is the casework's business (the web engineer's
`referral_case.assigned_to`); it comes in through `assignments`, a function
`(conn, referral_id) -> user id | None`. Without one, nobody is assigned, so a youth worker
is never shown identifiable data (team leads are): the gate fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from consent.audit import AuditAction
from consent.errors import InvalidInputError, require_aware
from consent.keyring import KeyRing
from consent.policy import (
    Actor,
    ConsentDecision,
    FieldGroup,
    Purpose,
    ReferralView,
    decide,
)
from consent.records import (
    BasisKind,
    ConsentOutcome,
    ConsentProposal,
    ConsentRecord,
    Refusal,
    SharingBasis,
    current_basis,
    record_consent,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.errors import NotFound
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.consent_store import ConsentStore
from referral_gateway.storage.referrals import (
    ReferralRef,
    decrypt_identity,
    find_referral,
    identity_token,
    referral_sites,
    set_referral_status,
)
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work

AssignmentLookup = Callable[[Connection, str], "str | None"]
# Told, inside the transaction that records it, that a referral's consent was withdrawn
# (the onward referrals cancel their deliveries there): (unit of work, referral id, now).
WithdrawalHook = Callable[[UnitOfWork, str, datetime], None]

IDENTIFIABLE_GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup.IDENTITY,
    FieldGroup.CONTACT,
    FieldGroup.CLINICAL_NOTES,
)

_ALLOWED_AUDIT_ACTION = {
    Purpose.EXPORT: AuditAction.EXPORT,
    Purpose.OUTBOUND_DELIVERY: AuditAction.OUTBOUND_DELIVERY,
}


def no_assignments(_conn: Connection, _referral_id: str) -> str | None:
    """Nobody is assigned to anything (until the casework supplies a lookup)."""
    return None


@dataclass(frozen=True)
class RevealedIdentity:
    """The identifiable details of a referral's young person, for the groups allowed.
    Fields of groups not asked for are None/empty. `erased` is True when retention already
    erased them: there is nothing left to show."""

    referral_id: str
    groups: frozenset[FieldGroup]
    basis: BasisKind
    erased: bool = False
    nhs_number: str | None = None
    family_name: str | None = None
    given_names: str | None = None
    birth_date: date | None = None
    address: str | None = None
    phone: str | None = None
    clinical_notes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never let identifiable data reach a log line
        groups = ",".join(sorted(g.value for g in self.groups))
        return f"RevealedIdentity(referral_id={self.referral_id!r}, groups={groups})"

    __str__ = __repr__


@dataclass(frozen=True)
class ConsentHistoryView:
    """A referral's consent history as the actor may see it. The free text of the records
    (Gillick assessment, override reason, authoriser's name, not-approached detail) is
    there only when `details_shown`: while a basis for sharing is in force and the actor may
    see identifiable data."""

    referral_id: str
    records: tuple[ConsentRecord, ...]
    details_shown: bool
    basis: SharingBasis | None

    @property
    def latest(self) -> ConsentRecord | None:
        return self.records[-1] if self.records else None


class Sharing:
    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        audit: AuditStore,
        *,
        assignments: AssignmentLookup = no_assignments,
        on_withdrawal: Sequence[WithdrawalHook] = (),
    ) -> None:
        self.engine = engine
        self.on_withdrawal = list(on_withdrawal)
        self.keyring = keyring
        self.audit = audit
        self.assignments = assignments
        self.consents = ConsentStore(keyring)

    # -- consent outcomes ----------------------------------------------------------------
    def record_consent_outcome(
        self,
        actor: Actor,
        referral_id: str,
        proposal: ConsentProposal,
        *,
        now: datetime,
        uow: UnitOfWork | None = None,
    ) -> ConsentRecord | Refusal | ConsentDecision:
        """Record the outcome of an approach: a new consent record, its audit entries and
        the referral's new status, in one transaction (the caller's `uow` if given, so that
        e.g. claiming the referral and recording consent commit together).

        Status: given or override → consented (in_support stays in_support); declined →
        declined; not approached → not_approached; withdrawn → withdrawn. A closed referral
        stays closed. A voided referral takes no outcome.
        """
        require_aware(now, "now")
        if proposal.referral_id != referral_id:
            raise InvalidInputError("The proposal is for another referral.")
        if proposal.recorded_by != actor.user_id:
            raise InvalidInputError("A consent outcome is recorded by the signed-in user.")
        if uow is not None:
            return self._record(uow, actor, referral_id, proposal, now)
        with unit_of_work(self.engine) as own:
            return self._record(own, actor, referral_id, proposal, now)

    def _record(
        self,
        uow: UnitOfWork,
        actor: Actor,
        referral_id: str,
        proposal: ConsentProposal,
        now: datetime,
    ) -> ConsentRecord | Refusal | ConsentDecision:
        conn = uow.conn
        referral, history, view = self._load(conn, referral_id, lock=True)
        access = decide(
            actor, view, FieldGroup.APPROACH_CARD, Purpose.DETAIL_VIEW, history, now=now
        )
        if not access.allowed:
            return access
        if referral.status is ReferralStatus.VOIDED:
            return Refusal(
                {"outcome": "The ED cancelled this attendance, so no outcome can be recorded."}
            )
        result = record_consent(history, proposal, now=now)
        if isinstance(result, Refusal):
            return result
        self.consents.append(conn, result)
        status = _status_after(referral.status, result.outcome)
        if status is not referral.status:
            set_referral_status(conn, referral_id, status, now=now)
        why = result.outcome.value + (f":{result.giver.value}" if result.giver else "")
        self.audit.append(
            uow,
            at=now,
            actor=actor.user_id,
            action=AuditAction.CONSENT_CHANGE,
            subject=referral_id,
            why=why,
        )
        if result.outcome is ConsentOutcome.WITHDRAWN:
            for hook in self.on_withdrawal:
                hook(uow, referral_id, now)
        before, after = current_basis(history), current_basis((*history, result))
        if before is None and after is not None:
            self.audit.append(
                uow,
                at=now,
                actor=actor.user_id,
                action=AuditAction.UNLOCK,
                subject=referral_id,
                why=after.kind.value,
            )
        return result

    # -- identifiable data ---------------------------------------------------------------
    def reveal_identity(
        self,
        actor: Actor,
        referral_id: str,
        purpose: Purpose = Purpose.DETAIL_VIEW,
        *,
        now: datetime,
        groups: Sequence[FieldGroup] = IDENTIFIABLE_GROUPS,
    ) -> RevealedIdentity | ConsentDecision:
        """Decrypt the referral's identifiable details if the policy allows every group in
        `groups` for `purpose`; otherwise the (first) refusal. Both are audited."""
        require_aware(now, "now")
        wanted = tuple(dict.fromkeys(groups))
        if not wanted or not all(g.identifiable for g in wanted):
            raise InvalidInputError("reveal_identity is for identifiable field groups only.")
        with unit_of_work(self.engine) as uow:
            conn = uow.conn
            referral, history, view = self._load(conn, referral_id)
            decisions = [decide(actor, view, g, purpose, history, now=now) for g in wanted]
            refused = next((d for d in decisions if not d.allowed), None)
            if refused is not None:
                self._audit_refusal(uow, actor, referral_id, purpose, refused, now)
                return refused
            basis = decisions[0].basis
            assert basis is not None  # an allowed identifiable decision names its basis
            revealed = self._decrypt(conn, referral, frozenset(wanted), basis)
            self.audit.append(
                uow,
                at=now,
                actor=actor.user_id,
                action=_ALLOWED_AUDIT_ACTION.get(purpose, AuditAction.VIEW_IDENTIFIABLE),
                subject=referral_id,
                why=f"{purpose.value}:{basis.value}:" + ",".join(g.value for g in wanted),
            )
            return revealed

    def consent_history(
        self, actor: Actor, referral_id: str, *, now: datetime
    ) -> ConsentHistoryView | ConsentDecision:
        """The consent history: outcomes for anyone who may see the approach card; the free
        text only while the actor may see identifiable data (audited when shown)."""
        require_aware(now, "now")
        with unit_of_work(self.engine) as uow:
            conn = uow.conn
            _, history, view = self._load(conn, referral_id)
            card = decide(
                actor, view, FieldGroup.APPROACH_CARD, Purpose.DETAIL_VIEW, history, now=now
            )
            if not card.allowed:
                return card
            notes = decide(
                actor, view, FieldGroup.CASE_NOTES, Purpose.DETAIL_VIEW, history, now=now
            )
            shown = False
            if notes.allowed:
                detailed = self.consents.history(conn, referral_id, with_details=True)
                if detailed != history:  # some record has free text to show
                    history, shown = detailed, True
                    self.audit.append(
                        uow,
                        at=now,
                        actor=actor.user_id,
                        action=AuditAction.VIEW_IDENTIFIABLE,
                        subject=referral_id,
                        why=f"{Purpose.DETAIL_VIEW.value}:{notes.basis}:consent_history",
                    )
            return ConsentHistoryView(referral_id, history, shown, current_basis(history))

    def authorise(
        self,
        actor: Actor,
        referral_id: str,
        group: FieldGroup,
        purpose: Purpose,
        *,
        now: datetime,
        uow: UnitOfWork | None = None,
    ) -> ConsentDecision:
        """Ask the policy about one group and purpose for an exit that does not decrypt
        through this service (an approach-card export, an outbound delivery), and audit
        the decision when the policy requires it (in the caller's `uow` if given, so an
        onward referral and its audit entry commit together). To read identifiable fields,
        call `reveal_identity`, which audits the reveal itself."""
        require_aware(now, "now")
        if uow is not None:
            return self._authorise(uow, actor, referral_id, group, purpose, now)
        with unit_of_work(self.engine) as own:
            return self._authorise(own, actor, referral_id, group, purpose, now)

    def _authorise(
        self,
        uow: UnitOfWork,
        actor: Actor,
        referral_id: str,
        group: FieldGroup,
        purpose: Purpose,
        now: datetime,
    ) -> ConsentDecision:
        _, history, view = self._load(uow.conn, referral_id)
        decision = decide(actor, view, group, purpose, history, now=now)
        if decision.audit_required:
            if decision.allowed:
                action = _ALLOWED_AUDIT_ACTION.get(purpose, AuditAction.VIEW_IDENTIFIABLE)
                self.audit.append(
                    uow,
                    at=now,
                    actor=actor.user_id,
                    action=action,
                    subject=referral_id,
                    why=f"{purpose.value}:{decision.reason.value}:{group.value}",
                )
            else:
                self._audit_refusal(uow, actor, referral_id, purpose, decision, now)
        return decision

    def queue_decisions(
        self, actor: Actor, referral_ids: Iterable[str], *, now: datetime
    ) -> dict[str, ConsentDecision]:
        """Approach-card decisions for a page of the queue, in two queries. Unknown ids are
        left out. Approach cards are not audited (the policy does not require it)."""
        require_aware(now, "now")
        ids = list(dict.fromkeys(referral_ids))
        with self.engine.connect() as conn:
            sites = referral_sites(conn, ids)
            histories = self.consents.histories(conn, [rid for rid, _ in sites])
            return {
                rid: decide(
                    actor,
                    ReferralView(rid, site, self.assignments(conn, rid)),
                    FieldGroup.APPROACH_CARD,
                    Purpose.QUEUE_VIEW,
                    histories[rid],
                    now=now,
                )
                for rid, site in sites
            }

    # -- helpers -------------------------------------------------------------------------
    def _load(
        self, conn: Connection, referral_id: str, *, lock: bool = False
    ) -> tuple[ReferralRef, tuple[ConsentRecord, ...], ReferralView]:
        """The referral, its consent history and what the policy is told about it."""
        referral = self._referral(conn, referral_id, lock=lock)
        history = self.consents.history(conn, referral_id)
        view = ReferralView(referral.id, referral.site, self.assignments(conn, referral.id))
        return referral, history, view

    def _referral(self, conn: Connection, referral_id: str, *, lock: bool = False) -> ReferralRef:
        referral = find_referral(conn, referral_id, lock=lock)
        if referral is None:
            raise NotFound(f"No referral {referral_id!r}.")
        return referral

    def _decrypt(
        self,
        conn: Connection,
        referral: ReferralRef,
        groups: frozenset[FieldGroup],
        basis: BasisKind,
    ) -> RevealedIdentity:
        token = identity_token(conn, referral.attendance_id)
        if token is None:
            return RevealedIdentity(referral.id, groups, basis, erased=True)
        ident = decrypt_identity(self.keyring, token)
        values: dict[str, Any] = {}
        if FieldGroup.IDENTITY in groups:
            birth = ident.get("birth_date")
            values |= {
                "nhs_number": ident.get("nhs_number"),
                "family_name": ident.get("family_name"),
                "given_names": ident.get("given_names"),
                "birth_date": date.fromisoformat(birth) if birth else None,
            }
        if FieldGroup.CONTACT in groups:
            values |= {"address": ident.get("address"), "phone": ident.get("phone")}
        if FieldGroup.CLINICAL_NOTES in groups:
            values["clinical_notes"] = tuple(ident.get("free_text", ()))
        return RevealedIdentity(referral.id, groups, basis, **values)

    def _audit_refusal(
        self,
        uow: UnitOfWork,
        actor: Actor,
        referral_id: str,
        purpose: Purpose,
        decision: ConsentDecision,
        now: datetime,
    ) -> None:
        self.audit.append(
            uow,
            at=now,
            actor=actor.user_id,
            action=AuditAction.VIEW_REFUSED,
            subject=referral_id,
            why=f"{purpose.value}:{decision.reason.value}",
        )


def _status_after(current: ReferralStatus, outcome: ConsentOutcome) -> ReferralStatus:
    if current in (ReferralStatus.CLOSED, ReferralStatus.VOIDED, ReferralStatus.NOT_ASSAULT):
        return current
    if outcome in (ConsentOutcome.GIVEN, ConsentOutcome.SAFEGUARDING_OVERRIDE):
        if current is ReferralStatus.IN_SUPPORT:
            return current
        return ReferralStatus.CONSENTED
    return {
        ConsentOutcome.DECLINED: ReferralStatus.DECLINED,
        ConsentOutcome.NOT_APPROACHED: ReferralStatus.NOT_APPROACHED,
        ConsentOutcome.WITHDRAWN: ReferralStatus.WITHDRAWN,
    }[outcome]
