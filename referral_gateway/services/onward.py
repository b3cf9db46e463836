"""Onward referrals: refer a consented young person to a service of the directory, send it
through the outbox, take the service's answers back, cancel on withdrawal.

    onward = OnwardReferrals(engine, keyring, sharing, sender=..., announce=...)
    onward.refer(actor, referral_id, service_id, now=now)
        -> OnwardTask | ConsentDecision | OnwardRefusal
    onward.run_outbox(clock) -> OutboxRun            (the worker: one pass over what is due)
    onward.update_task(service_id, task_id, move, now=now) -> OnwardTask | TaskRefusal
    onward.cancel_for_withdrawal(uow, referral_id, now)  (Sharing's withdrawal hook)
    onward.retry(ids | None, now=now) -> int         (dead letters back to pending)

The rules:
- A referral is made only when the consent policy allows `outbound_delivery` for the
  youth worker (`consent.policy.decide`, audited as `outbound_delivery`), and the Task, its
  first history entry and the outbox row commit in that same transaction.
- The worker asks the policy again (`consent.policy.onward_delivery`) before every attempt:
  a delivery whose consent was withdrawn meanwhile is stopped, never sent.
- The message is built at send time, from the encrypted attendance, with only the fields
  the service may receive (`domain.onward.fields_for`).
- A failed attempt waits `retry_delay` (exponential, capped, jittered); after
  `max_attempts` the delivery is dead (shown to administrators, `outbox retry`).
- The Task id and the idempotency key never change between attempts, so a repeat is the
  same referral at the service (FHIR: PUT by id in a transaction; webhook: the key header).
- A withdrawal stops deliveries not yet sent, marks open Tasks cancelled, and queues a
  cancellation for every service that may have the referral (sent or attempted).
"""

from __future__ import annotations

import logging
import random as _random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from consent.audit import AuditAction
from consent.errors import require_aware
from consent.keyring import KeyRing
from consent.policy import Actor, ConsentDecision, FieldGroup, Purpose, onward_delivery
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.onward import (
    Mover,
    RetryPolicy,
    Service,
    ShareableField,
    TaskMove,
    TaskRefusal,
    TaskStatus,
    fields_for,
    gives_up,
    move_task,
    retry_delay,
)
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.errors import NotFound
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage import onward as store
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.consent_store import ConsentStore
from referral_gateway.storage.onward import (
    OnwardTask,
    OutboxItem,
    OutboxKind,
    OutboxState,
    ServiceDirectory,
)
from referral_gateway.storage.referrals import decrypt_identity, find_referral
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    """What a sender sends. `values` holds only what the service may receive."""

    kind: OutboxKind
    service: Service
    secret: str | None  # the webhook's signing secret
    task_id: str
    referral_id: str
    site: str
    requested_at: datetime
    idempotency_key: str
    values: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None  # for a cancellation

    def __repr__(self) -> str:  # values may be identifiable
        return f"OutgoingMessage({self.kind.value}, task={self.task_id}, to={self.service.id})"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retryable: bool = True
    detail: str = ""  # a status code or exception class name: never a value


class Sender(Protocol):
    def __call__(self, message: OutgoingMessage) -> SendResult: ...


@dataclass(frozen=True)
class OnwardRefusal:
    message: str


@dataclass
class OutboxRun:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    stopped: int = 0


Announce = Callable[[ReferralNews], None]


def _no_news(_news: ReferralNews) -> None:
    return None


class OnwardReferrals:
    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        sharing: Sharing,
        *,
        sender: Sender,
        announce: Announce = _no_news,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 20,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.sharing = sharing
        self.sender = sender
        self.announce = announce
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.batch = batch
        self.random = random
        self.directory = ServiceDirectory(keyring)
        self.consents = ConsentStore(keyring)

    # -- making an onward referral ---------------------------------------------------------
    def refer(
        self, actor: Actor, referral_id: str, service_id: str, *, now: datetime
    ) -> OnwardTask | ConsentDecision | OnwardRefusal:
        require_aware(now, "now")
        with unit_of_work(self.engine) as uow:
            conn = uow.conn
            found = find_referral(conn, referral_id, lock=True)
            if found is None or found.site not in actor.sites:
                # a referral of a site the actor does not work for does not exist for them
                raise NotFound("No such referral.")
            service = self.directory.get(conn, service_id)
            if service is None or not service.active:
                return OnwardRefusal("Choose a service from the directory.")
            open_here = [
                t
                for t in store.tasks_of(conn, referral_id)
                if t.service_id == service_id and not t.status.final
            ]
            if open_here:
                return OnwardRefusal("This referral is already with that service.")
            decision = self.sharing.authorise(
                actor,
                referral_id,
                FieldGroup.IDENTITY,
                Purpose.OUTBOUND_DELIVERY,
                now=now,
                uow=uow,
            )
            if not decision.allowed:
                return decision
            task_id = str(uuid.uuid4())
            store.insert_task(
                conn,
                task_id=task_id,
                referral_id=referral_id,
                service_id=service_id,
                status=TaskStatus.REQUESTED,
                requested_by=actor.user_id,
                now=now,
            )
            if service.channel.sends:
                store.enqueue(conn, task_id=task_id, kind=OutboxKind.DELIVER, now=now)
            task = store.get_task(conn, task_id)
            assert task is not None
            return task

    # -- withdrawal ---------------------------------------------------------------------------
    def cancel_for_withdrawal(self, uow: UnitOfWork, referral_id: str, now: datetime) -> None:
        """Inside the transaction recording the withdrawal: stop what is not yet sent,
        cancel every open Task, and queue a cancellation where a delivery went (or may
        have gone: an attempt whose answer we never saw)."""
        conn = uow.conn
        tasks = [t for t in store.tasks_of(conn, referral_id) if not t.status.final]
        ids = [t.id for t in tasks]
        reached = [t.id for t in tasks if store.delivered(conn, t.id, OutboxKind.DELIVER)]
        store.stop_pending(conn, ids, kind=OutboxKind.DELIVER)
        for task in tasks:
            store.set_task_status(
                conn,
                task.id,
                TaskMove(TaskStatus.CANCELLED, reason="consent withdrawn"),
                by=Mover.GATEWAY,
                now=now,
            )
            if task.id in reached:
                store.enqueue(conn, task_id=task.id, kind=OutboxKind.CANCEL, now=now)

    # -- the worker -------------------------------------------------------------------------
    def run_outbox(self, clock: Clock) -> OutboxRun:
        """One pass: claim what is due at `clock()`, send each, record each answer."""
        run = OutboxRun()
        with unit_of_work(self.engine) as uow:
            claimed = store.claim_due(uow.conn, now=clock(), lease=self.lease, limit=self.batch)
        for item in claimed:
            self._send_one(item, clock(), run)
        return run

    def _send_one(self, item: OutboxItem, now: datetime, run: OutboxRun) -> None:
        message = self._message(item, now)
        if isinstance(message, str):
            with unit_of_work(self.engine) as uow:
                store.mark_stopped(uow.conn, item.id, why=message)
            run.stopped += 1
            log.info("outbox: delivery %d stopped (%s)", item.id, message)
            return
        try:
            result = self.sender(message)
        except Exception as exc:  # a sender must not kill the worker; never log values
            result = SendResult(False, True, type(exc).__name__)
        with unit_of_work(self.engine) as uow:
            if result.ok:
                store.mark_sent(uow.conn, item.id, now=now)
                if item.kind is OutboxKind.DELIVER:
                    self.sharing.audit.append(
                        uow,
                        at=now,
                        actor="outbox",
                        action=AuditAction.OUTBOUND_DELIVERY,
                        subject=item.referral_id,
                        why=f"onward:{item.service_id}:{item.task_id}",
                    )
                run.sent += 1
                return
            attempts = item.attempts + 1
            if not result.retryable or gives_up(self.policy, attempts):
                store.mark_failed(uow.conn, item.id, error=result.detail, retry_at=None)
                run.dead += 1
                log.warning(
                    "outbox: delivery %d to %s dead after %d attempt(s): %s",
                    item.id,
                    item.service_id,
                    attempts,
                    result.detail,
                )
                return
            wait = retry_delay(self.policy, attempts, self.random)
            store.mark_failed(uow.conn, item.id, error=result.detail, retry_at=now + wait)
            run.failed += 1

    def _message(self, item: OutboxItem, now: datetime) -> OutgoingMessage | str:
        """The message to send now, or why it must not be sent."""
        with self.engine.connect() as conn:
            task = store.get_task(conn, item.task_id)
            service = self.directory.get(conn, item.service_id)
            if task is None or service is None:
                return "task or service gone"
            referral = conn.execute(
                select(REFERRAL.c.site, REFERRAL.c.injury_category, REFERRAL.c.attendance_id).where(
                    REFERRAL.c.id == task.referral_id
                )
            ).one()
            base: dict[str, Any] = {
                "kind": item.kind,
                "service": service,
                "secret": self.directory.secret(conn, service.id),
                "task_id": task.id,
                "referral_id": task.referral_id,
                "site": referral.site,
                "requested_at": task.created_at,
                "idempotency_key": item.idempotency_key,
            }
            if item.kind is OutboxKind.CANCEL:
                return OutgoingMessage(**base, reason=task.reason)
            if task.status is TaskStatus.CANCELLED:
                return "task cancelled"
            history = self.consents.history(conn, task.referral_id)
            decision = onward_delivery(history, now=now)
            if not decision.allowed:
                return decision.reason.value
            values = self._values(conn, referral.attendance_id, referral.injury_category)
            if values is None:
                return "identifiable data erased"
            return OutgoingMessage(**base, values=fields_for(service, values))

    def _values(
        self, conn: Connection, attendance_id: int, injury: str | None
    ) -> dict[ShareableField, object] | None:
        row = conn.execute(
            select(ATTENDANCE.c.identity_enc, ATTENDANCE.c.age_at_arrival, ATTENDANCE.c.sex).where(
                ATTENDANCE.c.id == attendance_id
            )
        ).one()
        if row.identity_enc is None:
            return None
        ident = decrypt_identity(self.keyring, row.identity_enc)
        name = {
            "family": ident.get("family_name"),
            "given": ident.get("given_names"),
        }
        return {
            ShareableField.NHS_NUMBER: ident.get("nhs_number"),
            ShareableField.NAME: name if any(name.values()) else None,
            ShareableField.BIRTH_DATE: ident.get("birth_date"),
            ShareableField.ADDRESS: ident.get("address"),
            ShareableField.PHONE: ident.get("phone"),
            ShareableField.AGE: row.age_at_arrival,
            ShareableField.SEX: row.sex,
            ShareableField.INJURY_CATEGORY: injury,
        }

    # -- the service's answer ---------------------------------------------------------------
    def update_task(
        self, service_id: str, task_id: str, move: TaskMove, *, now: datetime
    ) -> OnwardTask | TaskRefusal:
        """The service moves its Task. `NotFound` when the Task is not this service's (so
        a service cannot learn of another's Tasks)."""
        require_aware(now, "now")
        news: ReferralNews | None = None
        with unit_of_work(self.engine) as uow:
            conn = uow.conn
            task = store.get_task(conn, task_id, lock=True)
            if task is None or task.service_id != service_id:
                raise NotFound("No such Task.")
            decided = move_task(task.status, move, by=Mover.SERVICE)
            if isinstance(decided, TaskRefusal):
                return decided
            if decided is not None:
                store.set_task_status(conn, task_id, decided, by=Mover.SERVICE, now=now)
                update = _NEWS.get(decided.status)
                if update is not None:
                    site = conn.execute(
                        select(REFERRAL.c.site).where(REFERRAL.c.id == task.referral_id)
                    ).scalar_one()
                    news = ReferralNews(task.referral_id, site, update)
            task = store.get_task(conn, task_id)
            assert task is not None
        if news is not None:
            self.announce(news)
        return task

    def describe(self, task_id: str) -> tuple[OnwardTask, str, Service] | None:
        """The Task, its referral's site and its service (for the service's view of it)."""
        with self.engine.connect() as conn:
            task = store.get_task(conn, task_id)
            if task is None:
                return None
            service = self.directory.get(conn, task.service_id)
            site = conn.execute(
                select(REFERRAL.c.site).where(REFERRAL.c.id == task.referral_id)
            ).scalar_one()
        assert service is not None
        return task, site, service

    def history(self, task_id: str) -> list[store.TaskEvent]:
        with self.engine.connect() as conn:
            return store.task_history(conn, task_id)

    def tasks_of(self, referral_id: str) -> list[tuple[OnwardTask, Service | None]]:
        with self.engine.connect() as conn:
            return [
                (t, self.directory.get(conn, t.service_id))
                for t in store.tasks_of(conn, referral_id)
            ]

    def services(self, *, active_only: bool = True) -> list[Service]:
        with self.engine.connect() as conn:
            return self.directory.all(conn, active_only=active_only)

    # -- administrators ---------------------------------------------------------------------
    def outbox(self, states: Sequence[OutboxState] | None = None) -> list[OutboxItem]:
        with self.engine.connect() as conn:
            return store.items(conn, states=states)

    def retry(self, ids: Sequence[int] | None, *, now: datetime) -> int:
        with unit_of_work(self.engine) as uow:
            return store.retry_dead(uow.conn, ids, now=now)


_NEWS = {
    TaskStatus.ACCEPTED: ReferralUpdate.ONWARD_ACCEPTED,
    TaskStatus.REJECTED: ReferralUpdate.ONWARD_REJECTED,
}
