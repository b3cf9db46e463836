"""Who may see which fields of a referral, for what purpose: one pure function, `decide`.

Field groups:
- `approach_card`: site, ED area and bay, age, sex, arrival time, injury category, in
  department or discharged. Enough to find and approach the young person; no name.
- `identity` (name, NHS number, date of birth), `contact` (address, phone), `clinical_notes`
  (free text from the ED) and `case_notes` (what youth workers write): identifiable.

The rules, checked in this order (the first that applies decides):
1. Site scope. Every actor, whatever their role, sees only referrals of their own sites.
2. Reports. The `report` purpose reads approach-card facts to count them and never an
   identifiable group. Any role may run a report for its sites.
3. Programme leads see aggregates only: anything but `report` is refused.
4. Administrators manage users, sites, keys and retention, but they are not in the care
   relationship: they read no referral, not even an approach card, for any purpose but
   `report`. Jobs that re-encrypt (key rotation) or erase (retention) handle ciphertext
   without showing it and are audited as such; they do not go through `decide`.
5. Youth workers and team leads of the site see approach cards in the queue and the detail
   view, and may export them, before any consent.
6. Identifiable groups, and any group sent by `outbound_delivery`, need a basis in force at
   `now` (`consent.records.current_basis`): consent given, or an active safeguarding
   override. Declined, not approached, no record yet and withdrawn all refuse.
7. A youth worker sees identifiable data only of referrals assigned to them (need to know);
   a team lead sees it for any referral of their site.
8. A safeguarding override lets the assigned youth worker and the team lead view identifiable
   data to act on the concern. It never authorises `export`. `outbound_delivery` (an onward
   referral to a service outside the programme, `onward_delivery`) needs given consent that
   covers onward sharing (`ConsentRecord.onward_sharing`), or an override whose authoriser
   recorded that the referral must go to a service (the same flag on the override record,
   audited with it); any other basis refuses.
9. Exporting identifiable data is for team leads only.

`audit_required` is True for every decision about an identifiable group, allowed or
refused (the caller writes a `view_identifiable` or `view_refused` audit entry), and for
every `export` or `outbound_delivery` decision.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from consent.errors import require_aware
from consent.records import (
    BasisKind,
    ConsentOutcome,
    ConsentRecord,
    current_basis,
    latest_record,
)


class FieldGroup(enum.StrEnum):
    APPROACH_CARD = "approach_card"
    IDENTITY = "identity"
    CONTACT = "contact"
    CLINICAL_NOTES = "clinical_notes"
    CASE_NOTES = "case_notes"

    @property
    def identifiable(self) -> bool:
        return self is not FieldGroup.APPROACH_CARD


class Purpose(enum.StrEnum):
    QUEUE_VIEW = "queue_view"
    DETAIL_VIEW = "detail_view"
    EXPORT = "export"
    OUTBOUND_DELIVERY = "outbound_delivery"
    REPORT = "report"


class Role(enum.StrEnum):
    YOUTH_WORKER = "youth_worker"
    TEAM_LEAD = "team_lead"
    PROGRAMME_LEAD = "programme_lead"
    ADMINISTRATOR = "administrator"


class DecisionReason(enum.StrEnum):
    # allowed
    APPROACH_CARD = "approach_card"
    AGGREGATE_REPORT = "aggregate_report"
    CONSENT_GIVEN = "consent_given"
    SAFEGUARDING_OVERRIDE = "safeguarding_override"
    # refused
    OTHER_SITE = "other_site"
    REPORT_IS_AGGREGATE = "report_is_aggregate"
    AGGREGATES_ONLY = "aggregates_only"
    ADMINISTRATOR_NO_REFERRALS = "administrator_no_referrals"
    NO_CONSENT_YET = "no_consent_yet"
    NOT_APPROACHED = "not_approached"
    CONSENT_DECLINED = "consent_declined"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NOT_ASSIGNED = "not_assigned"
    OVERRIDE_NOT_FOR_EXPORT = "override_not_for_export"
    OVERRIDE_NOT_FOR_DELIVERY = "override_not_for_delivery"
    CONSENT_NOT_FOR_ONWARD_SHARING = "consent_not_for_onward_sharing"
    EXPORT_NEEDS_TEAM_LEAD = "export_needs_team_lead"


_MESSAGES: dict[DecisionReason, str] = {
    DecisionReason.APPROACH_CARD: "Approach card details are shown before consent.",
    DecisionReason.AGGREGATE_REPORT: "Reports count approach card details only.",
    DecisionReason.CONSENT_GIVEN: "Consent is given.",
    DecisionReason.SAFEGUARDING_OVERRIDE: "A safeguarding override is in place.",
    DecisionReason.OTHER_SITE: "This referral belongs to a site you do not work for.",
    DecisionReason.REPORT_IS_AGGREGATE: "Reports never include identifiable details.",
    DecisionReason.AGGREGATES_ONLY: "Programme leads see aggregate reports only.",
    DecisionReason.ADMINISTRATOR_NO_REFERRALS: "Administrators do not read referrals.",
    DecisionReason.NO_CONSENT_YET: "Identifiable details are shown once consent is recorded.",
    DecisionReason.NOT_APPROACHED: (
        "The young person was not approached, so identifiable details stay hidden."
    ),
    DecisionReason.CONSENT_DECLINED: "The young person declined, so details stay hidden.",
    DecisionReason.CONSENT_WITHDRAWN: "Consent was withdrawn, so details are hidden again.",
    DecisionReason.NOT_ASSIGNED: "Claim this referral to see its identifiable details.",
    DecisionReason.OVERRIDE_NOT_FOR_EXPORT: (
        "A safeguarding override does not allow exporting; only given consent does."
    ),
    DecisionReason.OVERRIDE_NOT_FOR_DELIVERY: (
        "This safeguarding override does not say the referral must go to another service; "
        "share through the safeguarding route, or record an override that does."
    ),
    DecisionReason.CONSENT_NOT_FOR_ONWARD_SHARING: (
        "The consent recorded does not cover sharing with other services; record consent "
        "that does before sending the referral on."
    ),
    DecisionReason.EXPORT_NEEDS_TEAM_LEAD: "Only a team lead can export identifiable details.",
}


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: Role
    sites: frozenset[str]


@dataclass(frozen=True, slots=True)
class ReferralView:
    """What `decide` needs to know about a referral: nothing identifiable."""

    referral_id: str
    site: str
    assigned_to: str | None = None  # user id of the youth worker who claimed it


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    allowed: bool
    reason: DecisionReason
    basis: BasisKind | None  # the basis an allowed identifiable access relied on
    audit_required: bool

    @property
    def message(self) -> str:
        """A sentence for the person refused (or allowed)."""
        return _MESSAGES[self.reason]


def decide(
    actor: Actor,
    referral: ReferralView,
    group: FieldGroup,
    purpose: Purpose,
    history: Sequence[ConsentRecord],
    *,
    now: datetime,
) -> ConsentDecision:
    """May `actor` see `group` of `referral` for `purpose`, given its consent `history`?"""
    require_aware(now, "now")
    audit = group.identifiable or purpose in (Purpose.EXPORT, Purpose.OUTBOUND_DELIVERY)

    def refuse(reason: DecisionReason) -> ConsentDecision:
        return ConsentDecision(False, reason, None, audit)

    def allow(reason: DecisionReason, basis: BasisKind | None = None) -> ConsentDecision:
        return ConsentDecision(True, reason, basis, audit)

    if referral.site not in actor.sites:
        return refuse(DecisionReason.OTHER_SITE)
    if purpose is Purpose.REPORT:
        if group.identifiable:
            return refuse(DecisionReason.REPORT_IS_AGGREGATE)
        return allow(DecisionReason.AGGREGATE_REPORT)
    if actor.role is Role.PROGRAMME_LEAD:
        return refuse(DecisionReason.AGGREGATES_ONLY)
    if actor.role is Role.ADMINISTRATOR:
        return refuse(DecisionReason.ADMINISTRATOR_NO_REFERRALS)

    # a youth worker or team lead of the referral's site
    if not group.identifiable and purpose is not Purpose.OUTBOUND_DELIVERY:
        return allow(DecisionReason.APPROACH_CARD)
    basis = current_basis(history, at=now)
    if basis is None:
        return refuse(_why_no_basis(history, now))
    if actor.role is Role.YOUTH_WORKER and referral.assigned_to != actor.user_id:
        return refuse(DecisionReason.NOT_ASSIGNED)
    if purpose is Purpose.OUTBOUND_DELIVERY:
        return onward_delivery(history, now=now)
    if basis.kind is BasisKind.SAFEGUARDING_OVERRIDE and purpose is Purpose.EXPORT:
        return refuse(DecisionReason.OVERRIDE_NOT_FOR_EXPORT)
    if purpose is Purpose.EXPORT and actor.role is not Role.TEAM_LEAD:
        return refuse(DecisionReason.EXPORT_NEEDS_TEAM_LEAD)
    reason = (
        DecisionReason.CONSENT_GIVEN
        if basis.kind is BasisKind.CONSENT_GIVEN
        else DecisionReason.SAFEGUARDING_OVERRIDE
    )
    return allow(reason, basis.kind)


def onward_delivery(history: Sequence[ConsentRecord], *, now: datetime) -> ConsentDecision:
    """May the gateway send a referral to an outside service at `now` (rules 6 and 8)?

    The same answer `decide` gives a youth worker for `outbound_delivery`, without the actor:
    the outbox asks it again before every attempt, so a delivery still waiting when consent
    is withdrawn is never sent. Always audited."""
    require_aware(now, "now")
    basis = current_basis(history, at=now)
    if basis is None:
        return ConsentDecision(False, _why_no_basis(history, now), None, True)
    if basis.kind is BasisKind.SAFEGUARDING_OVERRIDE:
        if not basis.record.onward_sharing:
            return ConsentDecision(False, DecisionReason.OVERRIDE_NOT_FOR_DELIVERY, None, True)
        return ConsentDecision(True, DecisionReason.SAFEGUARDING_OVERRIDE, basis.kind, True)
    if not basis.record.onward_sharing:
        return ConsentDecision(False, DecisionReason.CONSENT_NOT_FOR_ONWARD_SHARING, None, True)
    return ConsentDecision(True, DecisionReason.CONSENT_GIVEN, basis.kind, True)


def _why_no_basis(history: Sequence[ConsentRecord], now: datetime) -> DecisionReason:
    record = latest_record(history, at=now)
    if record is None:
        return DecisionReason.NO_CONSENT_YET
    return {
        ConsentOutcome.DECLINED: DecisionReason.CONSENT_DECLINED,
        ConsentOutcome.WITHDRAWN: DecisionReason.CONSENT_WITHDRAWN,
        ConsentOutcome.NOT_APPROACHED: DecisionReason.NOT_APPROACHED,
    }.get(record.outcome, DecisionReason.NO_CONSENT_YET)
