"""Directory entries and a consented referral for the onward-referral tests (synthetic)."""

from __future__ import annotations

from datetime import datetime

from consent.policy import Actor
from referral_gateway.domain.onward import Channel, Service, ShareableField
from referral_gateway.services.onward import OnwardReferrals
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.unit_of_work import unit_of_work
from tests.consent_store.builders import WORKER, Assignments, given, seed_referral


def fhir_service(
    base_url: str,
    *,
    id: str = "wexcombe-youth",
    fields: frozenset[ShareableField] = frozenset(
        {ShareableField.NHS_NUMBER, ShareableField.NAME, ShareableField.AGE}
    ),
) -> Service:
    return Service(
        id=id,
        name="Wexcombe Youth Service",
        code="ZZW01",
        offers="Mentoring for young people after violence",
        channel=Channel.FHIR,
        endpoint=f"{base_url}/fhir",
        fields=fields,
    )


def webhook_service(
    url: str,
    *,
    id: str = "brackenfold-mentors",
    fields: frozenset[ShareableField] = frozenset({ShareableField.PHONE}),
) -> Service:
    return Service(
        id=id,
        name="Brackenfold Mentoring Charity",
        code="1999999",
        offers="Peer mentoring",
        channel=Channel.WEBHOOK,
        endpoint=f"{url}/hook",
        fields=fields,
        key_id="brackenfold-1",
    )


def add_service(
    onward: OnwardReferrals, service: Service, now: datetime, secret: str | None = None
) -> None:
    with unit_of_work(onward.engine) as uow:
        onward.directory.save(uow.conn, service, secret=secret, now=now)


def consented_referral(
    onward: OnwardReferrals,
    sharing: Sharing,
    assignments: Assignments,
    now: datetime,
    *,
    visit_number: str = "V5551",
    by: Actor = WORKER,
    consent: bool = True,
    onward_sharing: bool = True,
) -> str:
    seeded = seed_referral(onward.engine, onward.keyring, visit_number=visit_number, now=now)
    assignments.to[seeded.referral_id] = by.user_id
    if consent:
        sharing.record_consent_outcome(
            by,
            seeded.referral_id,
            given(seeded.referral_id, by=by, onward_sharing=onward_sharing),
            now=now,
        )
    return seeded.referral_id
