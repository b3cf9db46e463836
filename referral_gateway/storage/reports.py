"""Frozen report snapshots, their push state, and (in hub mode) the reports sites pushed.

Once-only is kept by the database, not by the process: a snapshot is unique per site and
month (the first freeze wins, later ones get the stored snapshot back), and a push is
claimed with a conditional update, so two processes or a restarted one never send the same
month twice at once, and never again once it is sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_snapshot import ReportSnapshot
from referral_gateway.storage.report_tables import HubReceiptRow, ReportPushRow, ReportSnapshotRow

SNAPSHOT: Table = ReportSnapshotRow.__table__  # type: ignore[attr-defined]
PUSH: Table = ReportPushRow.__table__  # type: ignore[attr-defined]
RECEIPT: Table = HubReceiptRow.__table__  # type: ignore[attr-defined]


class PushStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class PushState:
    site: str
    month: ReportMonth
    report_id: str
    status: PushStatus
    attempts: int
    last_attempt_at: datetime | None
    sent_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class ReceiptOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REPLAY = "replay"  # this report id with this checksum was received before
    CONFLICT = "conflict"  # this report id was received before with other content


@dataclass(frozen=True)
class Receipt:
    snapshot: ReportSnapshot
    key_id: str
    received_at: datetime


class ReportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- snapshots ---------------------------------------------------------------------
    def freeze(self, snapshot: ReportSnapshot, *, track_push: bool) -> ReportSnapshot:
        """Store `snapshot` unless the site and month already have one; return the stored
        one either way. With `track_push`, a pending push is recorded with it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(SNAPSHOT).values(
                        report_id=snapshot.report_id,
                        site=snapshot.site,
                        month=str(snapshot.month),
                        created_at=snapshot.created_at,
                        checksum=snapshot.checksum,
                        body=snapshot.body.decode("utf-8"),
                    )
                )
                if track_push:
                    conn.execute(insert(PUSH).values(_pending_push(snapshot)))
        except IntegrityError:
            pass
        stored = self.snapshot(snapshot.site, snapshot.month)
        if stored is None:  # pragma: no cover - the insert or the other insert happened
            raise RuntimeError("snapshot neither inserted nor found")
        if track_push:
            self._ensure_push_row(stored)
        return stored

    def snapshot(self, site: str, month: ReportMonth) -> ReportSnapshot | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SNAPSHOT).where(SNAPSHOT.c.site == site, SNAPSHOT.c.month == str(month))
            ).first()
        return None if row is None else _snapshot(row)

    def snapshots(self, month: ReportMonth | None = None) -> list[ReportSnapshot]:
        stmt = select(SNAPSHOT).order_by(SNAPSHOT.c.month.desc(), SNAPSHOT.c.site)
        if month is not None:
            stmt = stmt.where(SNAPSHOT.c.month == str(month))
        with self.engine.connect() as conn:
            return [_snapshot(r) for r in conn.execute(stmt)]

    # -- push state --------------------------------------------------------------------
    def claim_push(self, site: str, month: ReportMonth, *, now: datetime, lease: timedelta) -> bool:
        """Take the right to send this month's snapshot: True for exactly one caller while
        it is pending, failed, or sending under an expired lease."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(PUSH)
                .where(
                    PUSH.c.site == site,
                    PUSH.c.month == str(month),
                    or_(
                        PUSH.c.status.in_([PushStatus.PENDING.value, PushStatus.FAILED.value]),
                        and_(
                            PUSH.c.status == PushStatus.SENDING.value,
                            or_(PUSH.c.lease_until.is_(None), PUSH.c.lease_until < now),
                        ),
                    ),
                )
                .values(
                    status=PushStatus.SENDING.value, lease_until=now + lease, last_attempt_at=now
                )
            )
            return result.rowcount == 1

    def finish_push(
        self,
        site: str,
        month: ReportMonth,
        *,
        delivered: bool,
        now: datetime,
        attempts: int,
        status_code: int | None,
        error: str | None,
    ) -> None:
        values: dict[str, object] = {
            "status": (PushStatus.SENT if delivered else PushStatus.FAILED).value,
            "attempts": PUSH.c.attempts + attempts,
            "lease_until": None,
            "last_attempt_at": now,
            "last_status_code": status_code,
            "last_error": error[:200] if error else None,
        }
        if delivered:
            values["sent_at"] = now
        with self.engine.begin() as conn:
            conn.execute(
                update(PUSH).where(PUSH.c.site == site, PUSH.c.month == str(month)).values(values)
            )

    def push_state(self, site: str, month: ReportMonth) -> PushState | None:
        states = self._push_states(PUSH.c.site == site, PUSH.c.month == str(month))
        return states[0] if states else None

    def push_states(self, month: ReportMonth | None = None) -> list[PushState]:
        if month is None:
            return self._push_states()
        return self._push_states(PUSH.c.month == str(month))

    def unsent_months(self) -> list[tuple[str, ReportMonth]]:
        """Site and month of every frozen snapshot whose push is not yet sent."""
        return [
            (s.site, s.month) for s in self._push_states(PUSH.c.status != PushStatus.SENT.value)
        ]

    def _push_states(self, *conditions: object) -> list[PushState]:
        stmt = select(PUSH).order_by(PUSH.c.month.desc(), PUSH.c.site)
        if conditions:
            stmt = stmt.where(*conditions)  # type: ignore[arg-type]
        with self.engine.connect() as conn:
            return [
                PushState(
                    site=r.site,
                    month=ReportMonth.parse(r.month),
                    report_id=r.report_id,
                    status=PushStatus(r.status),
                    attempts=r.attempts,
                    last_attempt_at=r.last_attempt_at,
                    sent_at=r.sent_at,
                    last_status_code=r.last_status_code,
                    last_error=r.last_error,
                )
                for r in conn.execute(stmt)
            ]

    def _ensure_push_row(self, snapshot: ReportSnapshot) -> None:
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(
                    select(func.count())
                    .select_from(PUSH)
                    .where(PUSH.c.site == snapshot.site, PUSH.c.month == str(snapshot.month))
                ).scalar_one()
                if not exists:
                    conn.execute(insert(PUSH).values(_pending_push(snapshot)))
        except IntegrityError:
            pass  # another process recorded it first

    # -- hub ---------------------------------------------------------------------------
    def receive(self, snapshot: ReportSnapshot, *, key_id: str, now: datetime) -> ReceiptOutcome:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(RECEIPT).values(
                        report_id=snapshot.report_id,
                        checksum=snapshot.checksum,
                        site=snapshot.site,
                        month=str(snapshot.month),
                        key_id=key_id,
                        created_at=snapshot.created_at,
                        received_at=now,
                        body=snapshot.body.decode("utf-8"),
                    )
                )
            return ReceiptOutcome.ACCEPTED
        except IntegrityError:
            with self.engine.connect() as conn:
                seen = conn.execute(
                    select(RECEIPT.c.checksum).where(RECEIPT.c.report_id == snapshot.report_id)
                ).scalar_one_or_none()
            if seen == snapshot.checksum:
                return ReceiptOutcome.REPLAY
            return ReceiptOutcome.CONFLICT

    def received(self, month: ReportMonth) -> list[Receipt]:
        """The newest report each site pushed for `month`, by site."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RECEIPT)
                .where(RECEIPT.c.month == str(month))
                .order_by(RECEIPT.c.site, RECEIPT.c.received_at.desc(), RECEIPT.c.id.desc())
            ).all()
        latest: dict[str, Receipt] = {}
        for r in rows:
            if r.site not in latest:
                latest[r.site] = Receipt(_snapshot(r), r.key_id, r.received_at)
        return list(latest.values())

    def received_months(self) -> list[ReportMonth]:
        with self.engine.connect() as conn:
            months = conn.execute(
                select(RECEIPT.c.month).distinct().order_by(RECEIPT.c.month.desc())
            ).scalars()
            return [ReportMonth.parse(m) for m in months]


def _snapshot(row: object) -> ReportSnapshot:
    r = row._mapping  # type: ignore[attr-defined]
    return ReportSnapshot(
        report_id=r["report_id"],
        site=r["site"],
        month=ReportMonth.parse(r["month"]),
        created_at=r["created_at"],
        body=r["body"].encode("utf-8"),
        checksum=r["checksum"],
    )


def _pending_push(snapshot: ReportSnapshot) -> dict[str, object]:
    """A month's push record, not yet attempted."""
    return {
        "site": snapshot.site,
        "month": str(snapshot.month),
        "report_id": snapshot.report_id,
        "status": PushStatus.PENDING.value,
        "attempts": 0,
    }
