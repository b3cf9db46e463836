"""Onward referrals to outside services: the directory, what may be sent, and the Task's life.

The directory of services is kept by administrators. Each `Service` says who it is (name,
ODS or charity code, what it offers), how a referral reaches it (`Channel`: a FHIR R4
endpoint, a signed JSON webhook, or `manual`: a phone call or e-mail outside the gateway,
so nothing is sent) and which `ShareableField`s it may receive. Nothing outside that list
ever leaves: `fields_for(service, values)` drops the rest before a message is built.

An onward referral is a Task (FHIR `Task`, intent `order`, code `fulfill`) whose id is made
once, when the referral is made, and never changes: every delivery and every retry carries
it, so the service can tell a repeat from a new referral. Its status moves:

    requested   -> received, accepted, rejected, cancelled
    received    -> accepted, rejected, cancelled
    accepted    -> in-progress, on-hold, completed, failed, cancelled
    in-progress -> on-hold, completed, failed, cancelled
    on-hold     -> in-progress, completed, failed, cancelled
    rejected, completed, failed, cancelled: final

`rejected` needs a reason and `completed` an outcome. The service moves the Task; only the
gateway cancels it (when consent is withdrawn or the youth worker stops it). A repeat of the
status the Task already has (the same update sent twice) changes nothing.

Delivery is retried with exponential backoff and jitter (`retry_delay`): attempt n waits
between half and all of `base * 2**(n-1)`, capped, so many failed deliveries do not come
back at the same moment; after `max_attempts` the delivery is dead-lettered for an
administrator to look at and retry.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from referral_gateway.domain.errors import DomainError


class OnwardError(DomainError):
    """A directory entry or a Task update that breaks the rules above."""


class Channel(enum.StrEnum):
    FHIR = "fhir"
    WEBHOOK = "webhook"
    MANUAL = "manual"

    @property
    def sends(self) -> bool:
        return self is not Channel.MANUAL


class ShareableField(enum.StrEnum):
    """What a service may be configured to receive. The referral's own id, the Task id,
    the referring site and the service requested always go (they identify the referral,
    not the young person)."""

    NHS_NUMBER = "nhs_number"
    NAME = "name"
    BIRTH_DATE = "birth_date"
    ADDRESS = "address"
    PHONE = "phone"
    AGE = "age"
    SEX = "sex"
    INJURY_CATEGORY = "injury_category"


SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,35}$")
CODE = re.compile(r"^[A-Za-z0-9-]{3,20}$")


@dataclass(frozen=True, slots=True)
class Service:
    id: str  # a short slug: "wexcombe-youth"
    name: str
    code: str  # ODS code or charity number
    offers: str  # what it offers, in a line
    channel: Channel
    endpoint: str | None  # FHIR base URL or webhook URL; None for manual
    fields: frozenset[ShareableField]
    key_id: str | None = None  # webhook signing key id
    active: bool = True


def check_service(service: Service) -> Service:
    """The entry as given, or `OnwardError` naming what is wrong."""
    if not SERVICE_ID.match(service.id):
        raise OnwardError("A service id is 1-36 lower-case letters, digits and '-'.")
    if not service.name.strip():
        raise OnwardError("A service needs a name.")
    if not CODE.match(service.code):
        raise OnwardError("A service needs an ODS code or charity number (3-20 characters).")
    if service.channel.sends:
        if not service.endpoint or not service.endpoint.startswith(("https://", "http://")):
            raise OnwardError(f"A {service.channel.value} service needs an http(s) endpoint.")
    elif service.endpoint:
        raise OnwardError("A manual service has no endpoint.")
    if service.channel is Channel.WEBHOOK and not service.key_id:
        raise OnwardError("A webhook service needs a signing key id.")
    return service


def parse_fields(text: str) -> frozenset[ShareableField]:
    """`"nhs_number, name"` -> the fields; `OnwardError` for a name that is not one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {f.value: f for f in ShareableField}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise OnwardError(f"Unknown field(s) {', '.join(unknown)}; choose from {', '.join(known)}.")
    return frozenset(known[n] for n in names)


def fields_for(service: Service, values: Mapping[ShareableField, object]) -> dict[str, object]:
    """Only the values the service may receive (and that are known), by field name."""
    return {f.value: v for f, v in values.items() if f in service.fields and v is not None}


# -- the Task's status ------------------------------------------------------------------------


class TaskStatus(enum.StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()


_FINAL = frozenset(
    {TaskStatus.REJECTED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
_WORK = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_NEXT: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.REQUESTED: frozenset(
        {TaskStatus.RECEIVED, TaskStatus.ACCEPTED, TaskStatus.REJECTED, TaskStatus.CANCELLED}
    ),
    TaskStatus.RECEIVED: frozenset(
        {TaskStatus.ACCEPTED, TaskStatus.REJECTED, TaskStatus.CANCELLED}
    ),
    TaskStatus.ACCEPTED: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD, *_WORK}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.ON_HOLD, *_WORK}),
    TaskStatus.ON_HOLD: frozenset({TaskStatus.IN_PROGRESS, *_WORK}),
}


class Mover(enum.StrEnum):
    SERVICE = "service"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class TaskMove:
    """A status the Task moves to, with the reason or outcome that goes with it."""

    status: TaskStatus
    reason: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRefusal:
    message: str


MAX_TEXT = 500


def move_task(current: TaskStatus, move: TaskMove, *, by: Mover) -> TaskMove | TaskRefusal | None:
    """The move to record; None when it is a repeat of the current status (nothing to do);
    or a `TaskRefusal` saying why not."""
    if move.status is current:
        return None
    if by is Mover.SERVICE and move.status in (TaskStatus.CANCELLED, TaskStatus.REQUESTED):
        return TaskRefusal(f"A service cannot set a Task to {move.status.value}.")
    if move.status not in _NEXT.get(current, frozenset()):
        return TaskRefusal(f"A Task that is {current.value} cannot become {move.status.value}.")
    reason = _text(move.reason)
    outcome = _text(move.outcome)
    if move.status is TaskStatus.REJECTED and reason is None:
        return TaskRefusal("A rejection needs a reason (Task.statusReason).")
    if move.status is TaskStatus.COMPLETED and outcome is None:
        return TaskRefusal("A completed Task needs an outcome (Task.output).")
    return TaskMove(move.status, reason, outcome)


def _text(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()[:MAX_TEXT]


# -- delivery retries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 10


def retry_delay(policy: RetryPolicy, attempts: int, random: Callable[[], float]) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: exponential, capped, with
    jitter between half and all of it (`random` returns a float in [0, 1))."""
    if attempts < 1:
        raise OnwardError("retry_delay is for a failed attempt (attempts >= 1).")
    ceiling: timedelta = min(policy.cap, policy.base * (2 ** min(attempts - 1, 30)))
    jittered: timedelta = ceiling * (0.5 + 0.5 * random())
    return jittered


def gives_up(policy: RetryPolicy, attempts: int) -> bool:
    return attempts >= policy.max_attempts
