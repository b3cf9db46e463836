"""Synthetic ADT traffic: invented people, valid-looking test NHS numbers (999 range), a
realistic mix of ED attendances. Used by the demo feed, the benchmarks and the tests.
No real patient data anywhere."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

GIVEN = [
    "Alex",
    "Sam",
    "Jordan",
    "Casey",
    "Riley",
    "Jamie",
    "Taylor",
    "Morgan",
    "Charlie",
    "Robin",
    "Avery",
    "Quinn",
    "Rowan",
    "Skyler",
    "Reese",
    "Drew",
]
FAMILY = [
    "Testington",
    "Sampleford",
    "Exampleton",
    "Fictionby",
    "Madeup",
    "Placeholder",
    "Synthwick",
    "Mockley",
    "Dummersby",
    "Inventon",
]
AREAS = ["MAJORS", "MINORS", "RESUS", "PAEDS", "UTC"]

# (system, code, text, mechanism) — signals the detection rules look for
ASSAULT_DIAGNOSES = [
    ("SCT", "425322008", "Stab wound", "bladed"),
    ("SCT", "52684005", "Assault", "body"),
    ("SCT", "283545005", "Gunshot wound", "firearm"),
    ("I10", "X99.9", "Assault by sharp object", "bladed"),
    ("I10", "Y04.0", "Assault by bodily force", "body"),
]
ASSAULT_COMPLAINTS = [
    "stabbed in left thigh",
    "assaulted outside club, punched",
    "GSW to arm",
    "glassed in pub",
    "kicked in head during fight",
]
OTHER_DIAGNOSES = [
    ("SCT", "29857009", "Chest pain"),
    ("SCT", "217082002", "Fall"),
    ("SCT", "21522001", "Abdominal pain"),
    ("SCT", "276853009", "Self harm"),
    ("I10", "S52.5", "Fracture of lower end of radius"),
]
OTHER_COMPLAINTS = [
    "fell off bike",
    "chest pain",
    "denies assault, fell down stairs",
    "sports injury football",
    "abdominal pain",
]


def nhs_number(rng: random.Random) -> str:
    """A check-digit-valid number in the 999 range used for test data."""
    while True:
        digits = [9, 9, 9] + [rng.randrange(10) for _ in range(6)]
        total = sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)


@dataclass(frozen=True)
class Person:
    mrn: str
    nhs_number: str
    family: str
    given: str
    birth_date: date
    sex: str  # M / F


@dataclass
class Visit:
    person: Person
    visit_number: str
    site: str
    arrival: datetime
    area: str
    bay: str
    patient_class: str = "E"
    diagnoses: list[tuple[str, str, str]] = field(default_factory=list)
    complaint: str | None = None


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def adt(
    event: str,
    visit: Visit,
    control_id: str,
    *,
    sent: datetime,
    discharge: datetime | None = None,
    structure: str | None = None,
) -> str:
    """An ER7 ADT message for a visit (`\\r` separated, v2.4)."""
    p = visit.person
    struct = structure or {
        "A04": "ADT_A01",
        "A08": "ADT_A01",
        "A11": "ADT_A09",
        "A13": "ADT_A01",
        "A03": "ADT_A03",
    }.get(event, "ADT_A01")
    segs = [
        f"MSH|^~\\&|EDIS|{visit.site}|RG|RG|{ts(sent)}||ADT^{event}^{struct}|{control_id}|P|2.4",
        f"EVN|{event}|{ts(sent)}",
        f"PID|1||{p.nhs_number}^^^NHS^NH~{p.mrn}^^^{visit.site}^MR||{p.family}^{p.given}||"
        f"{p.birth_date:%Y%m%d}|{p.sex}|||1 Example Street^^Testtown^^ZZ1 1ZZ||07700 900000",
        f"PV1|1|{visit.patient_class}|{visit.area}^{visit.bay}^^{visit.site}||||||||||||||||"
        f"{visit.visit_number}^^^{visit.site}^VN|||||||||||||||||||||||||"
        f"{ts(visit.arrival)}|{ts(discharge) if discharge else ''}",
    ]
    if visit.complaint:
        segs.append(f"PV2|||^{visit.complaint}")
    for i, (system, code, text) in enumerate(visit.diagnoses, start=1):
        segs.append(f"DG1|{i}||{code}^{text}^{system}||{ts(sent)}|W")
    return "\r".join(segs)


class SyntheticEd:
    """Generates the messages of a stream of ED attendances, in a plausible order."""

    def __init__(
        self,
        *,
        site: str = "RXX01",
        seed: int | None = None,
        start: datetime | None = None,
        assault_share: float = 0.15,
    ) -> None:
        self.rng = random.Random(seed)
        self.site = site
        self.now = start or datetime.now(UTC).replace(microsecond=0)
        self.assault_share = assault_share
        self._serial = 0

    def _next_id(self) -> str:
        self._serial += 1
        return f"{self.site}{self.rng.randrange(10**6):06d}{self._serial:07d}"

    def person(self, *, age: int) -> Person:
        rng = self.rng
        birth = (self.now - timedelta(days=int(age * 365.25) + rng.randrange(300))).date()
        return Person(
            mrn=f"MRN{rng.randrange(10**7):07d}",
            nhs_number=nhs_number(rng),
            family=rng.choice(FAMILY),
            given=rng.choice(GIVEN),
            birth_date=birth,
            sex=rng.choice("MF"),
        )

    def attendance(self) -> list[str]:
        """The messages of one attendance: arrival, sometimes an update, a discharge, and
        now and then a cancellation or an unrelated registration."""
        rng = self.rng
        young = rng.random() < 0.45
        age = rng.randrange(11, 26) if young else rng.randrange(26, 90)
        assault = rng.random() < (self.assault_share / 0.45 if young else 0.05)
        visit = Visit(
            person=self.person(age=age),
            visit_number=f"V{rng.randrange(10**8):08d}",
            site=self.site,
            arrival=self.now,
            area=rng.choice(AREAS),
            bay=f"B{rng.randrange(1, 30)}",
        )
        if assault:
            system, code, text, _ = rng.choice(ASSAULT_DIAGNOSES)
            visit.complaint = rng.choice(ASSAULT_COMPLAINTS)
            late_code = [(system, code, text)]
        else:
            visit.complaint = rng.choice(OTHER_COMPLAINTS)
            late_code = [rng.choice(OTHER_DIAGNOSES)]
        msgs = [adt(rng.choice(["A01", "A04"]), visit, self._next_id(), sent=self.now)]
        self.now += timedelta(seconds=rng.randrange(20, 200))
        visit.diagnoses = late_code
        msgs.append(adt("A08", visit, self._next_id(), sent=self.now))
        roll = rng.random()
        if roll < 0.03:
            msgs.append(adt("A11", visit, self._next_id(), sent=self.now))
        else:
            out = self.now + timedelta(minutes=rng.randrange(30, 240))
            msgs.append(adt("A03", visit, self._next_id(), sent=self.now, discharge=out))
        if rng.random() < 0.05:
            msgs.append(adt("A28", visit, self._next_id(), sent=self.now, structure="ADT_A05"))
        return msgs

    def stream(self, attendances: int) -> Iterator[str]:
        """Messages of many attendances, interleaved a little as in a real department."""
        pending: list[list[str]] = []
        made = 0
        while made < attendances or pending:
            if made < attendances and (len(pending) < 4 or self.rng.random() < 0.5):
                pending.append(self.attendance())
                made += 1
            lane = pending[self.rng.randrange(len(pending))]
            yield lane.pop(0)
            if not lane:
                pending.remove(lane)
