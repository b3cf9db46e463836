"""Builders for the web tests: staff accounts, and an ED whose arrivals go through the real
inbox, detection and pipeline (only the wire format is faked, as JSON).

Everyone here is invented: test NHS numbers from the 999 range, made-up names.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from argon2 import PasswordHasher

from consent.policy import Role
from referral_gateway.domain.accounts import StaffUser, check_new_account
from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EdLocation,
    EventKind,
    PatientIdentity,
    Sex,
    Source,
)
from referral_gateway.domain.casework import Case
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.services.pipeline import BatchResult, Pipeline
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.inbox import Arrival, InboxStore, PendingMessage

SITE_A = "RXA01"
SITE_B = "RXB02"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime.fromisoformat("2026-03-14T22:30:00+00:00")  # a Saturday night in ED


def user(
    role: Role = Role.YOUTH_WORKER,
    *,
    id: str = "u-ash",
    sites: tuple[str, ...] = (SITE_A,),
    name: str = "Ash",
) -> StaffUser:
    return StaffUser(id, id, role, frozenset(sites), name)


def case(status: ReferralStatus = ReferralStatus.NEW, **fields: object) -> Case:
    values: dict[str, object] = {
        "referral_id": "r-1",
        "site": SITE_A,
        "status": status,
        "created_at": T0,
    }
    values.update(fields)
    return Case(**values)  # type: ignore[arg-type]


def add_account(
    accounts: AccountStore,
    username: str,
    role: Role,
    sites: tuple[str, ...] = (SITE_A,),
    *,
    now: datetime = T0,
    display_name: str = "",
) -> StaffUser:
    proposal = check_new_account(
        username, role.value, sites, PASSWORD, display_name=display_name or username.title()
    )
    assert not hasattr(proposal, "problems"), proposal
    # an account whose owner has set their own password already (created by the test setup)
    return accounts.add_user(  # type: ignore[arg-type]
        proposal, PASSWORD, by="system:test-setup", now=now, must_change_password=False
    )


@dataclass
class Patient:
    given: str = "Jordan"
    family: str = "Testington"
    nhs_number: str = "9990001235"
    age: int = 16
    sex: Sex = Sex.MALE
    phone: str = "07700 900123"
    address: str = "1 Example Street, Testtown ZZ1 1ZZ"


def _decode(message: PendingMessage) -> list[AttendanceEvent]:
    """The fake wire format: JSON naming what an ADT message would carry."""
    d = json.loads(message.payload)
    return [
        AttendanceEvent(
            kind=EventKind(d["kind"]),
            site=d["site"],
            source=Source.HL7V2,
            visit_number=d["visit"],
            message_type="ADT^A01",
            patient=PatientIdentity(
                nhs_number=d.get("nhs"),
                local_ids=(d["mrn"],),
                family_name=d.get("family"),
                given_names=d.get("given"),
                birth_date=date.fromisoformat(d["dob"]) if d.get("dob") else None,
                address=d.get("address"),
                phone=d.get("phone"),
            ),
            sex=Sex(d.get("sex", "unknown")),
            patient_class="E",
            is_emergency=True,
            arrival=datetime.fromisoformat(d["arrival"]) if d.get("arrival") else None,
            discharge=datetime.fromisoformat(d["discharge"]) if d.get("discharge") else None,
            location=EdLocation(d.get("area"), d.get("bay")),
            codings=tuple(Coding("snomed", c) for c in d.get("codes", [])),
            free_text=tuple(d.get("text", [])),
        )
    ]


class FakeEd:
    """An emergency department sending arrivals: stored in the real inbox, run through the
    real pipeline (detection, attendances, referrals, `on_referral`)."""

    def __init__(self, engine, keyring, clock, *, on_referral=None) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.inbox = InboxStore(engine, keyring)
        self.pipeline = Pipeline(
            engine,
            self.inbox,
            AttendanceStore(keyring),
            {"test": _decode},
            SiteDirectory(),
            bundled_valuesets(),
            clock,
            on_referral=on_referral,
        )
        self._ids = itertools.count(1)

    def send(self, **event: object) -> None:
        n = next(self._ids)
        self.inbox.store_batch(
            [
                Arrival(
                    "test",
                    f"EDIS^{event['site']}",
                    f"msg-{n}",
                    "ADT^A01",
                    str(event["site"]),
                    json.dumps(event).encode(),
                    self.clock(),
                )
            ]
        )

    def stab_wound(
        self,
        *,
        site: str = SITE_A,
        patient: Patient | None = None,
        area: str = "MAJORS",
        bay: str = "B4",
        codes: tuple[str, ...] = ("425322008",),
        arrival: datetime | None = None,
        visit: str | None = None,
        text: tuple[str, ...] = ("stabbed in left thigh",),
    ) -> str:
        """An assault attendance; returns the new referral's id."""
        p = patient or Patient()
        at = arrival or self.clock()
        dob = at.date().replace(year=at.year - p.age) - timedelta(days=30)
        n = next(self._ids)
        self.send(
            kind="arrival",
            site=site,
            visit=visit or f"V{n:06d}",
            mrn=f"MRN{n:06d}",
            nhs=p.nhs_number,
            given=p.given,
            family=p.family,
            dob=dob.isoformat(),
            sex=p.sex.value,
            phone=p.phone,
            address=p.address,
            arrival=at.isoformat(),
            area=area,
            bay=bay,
            codes=list(codes),
            text=list(text),
        )
        result = self.pipeline.process_pending()
        assert len(result.new_referral_ids) == 1, result
        return result.new_referral_ids[0]

    def news(self, kind: str, *, visit: str, site: str = SITE_A, **fields: object) -> BatchResult:
        """A later message about the visit ("discharge", "cancel_discharge",
        "cancel_arrival", "update"), processed at once."""
        self.send(kind=kind, site=site, visit=visit, mrn=f"MRN-{visit}", **fields)
        return self.pipeline.process_pending()
