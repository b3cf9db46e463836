"""Frozen report snapshots, their push state, and (in hub mode) the reports sites pushed.

Once-only is kept by the database, not by the process: a snapshot is unique per site,
month and version (the first freeze of version 1 wins, later ones get the stored snapshot
back; a re-issue adds the next version), and a push is claimed with a conditional update,
so two processes or a restarted one never send the same version twice at once, and never
again once it is sent. The push row follows the month's newest version.

At the hub a site and month's receipts are numbered versions: the first report is version
1; another report for the same month is refused unless it carries a reason (a correction),
and then it is the next version. The same report id again is a replay, never a version.
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
from referral_gateway.storage.errors import VersionRace
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
    refused_under: str | None = None  # refused for good under this push configuration


class ReceiptOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REPLAY = "replay"  # this report id with this checksum was received before
    CONFLICT = "conflict"  # this report id was received before with other content
    ALREADY_HELD = "month_already_received"  # another report for the month, without a reason


@dataclass(frozen=True)
class ReceiptResult:
    outcome: ReceiptOutcome
    version: int | None  # the hub's version of the site and month (None: nothing stored)


@dataclass(frozen=True)
class Receipt:
    snapshot: ReportSnapshot  # its version and reason are the hub's
    key_id: str
    received_at: datetime

    @property
    def version(self) -> int:
        return self.snapshot.version

    @property
    def reason(self) -> str | None:
        return self.snapshot.reason


class ReportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- snapshots ---------------------------------------------------------------------
    def freeze(self, snapshot: ReportSnapshot, *, track_push: bool) -> ReportSnapshot:
        """Store `snapshot` unless the site and month already have one; return the stored
        one either way. With `track_push`, a pending push is recorded with it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(SNAPSHOT).values(_snapshot_values(snapshot)))
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

    def reissue(self, snapshot: ReportSnapshot, *, track_push: bool) -> ReportSnapshot:
        """Store `snapshot` as the month's next version (its `version` must be the stored
        newest + 1, else VersionRace) and make it the one the push sends: pending again,
        with a refusal under the old version forgotten."""
        try:
            with self.engine.begin() as conn:
                newest = conn.execute(
                    select(func.max(SNAPSHOT.c.version)).where(
                        SNAPSHOT.c.site == snapshot.site, SNAPSHOT.c.month == str(snapshot.month)
                    )
                ).scalar_one_or_none()
                if (newest or 0) + 1 != snapshot.version:
                    raise VersionRace(f"version {snapshot.version} is not the next one")
                conn.execute(insert(SNAPSHOT).values(_snapshot_values(snapshot)))
                if track_push:
                    moved = conn.execute(
                        update(PUSH)
                        .where(PUSH.c.site == snapshot.site, PUSH.c.month == str(snapshot.month))
                        .values(
                            report_id=snapshot.report_id,
                            status=PushStatus.PENDING.value,
                            lease_until=None,
                            sent_at=None,
                            last_status_code=None,
                            last_error=None,
                            refused_under=None,
                        )
                    )
                    if moved.rowcount == 0:
                        conn.execute(insert(PUSH).values(_pending_push(snapshot)))
        except IntegrityError:
            raise VersionRace(f"version {snapshot.version} was stored by another process") from None
        return snapshot

    def snapshot(self, site: str, month: ReportMonth) -> ReportSnapshot | None:
        """The month's newest version."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SNAPSHOT)
                .where(SNAPSHOT.c.site == site, SNAPSHOT.c.month == str(month))
                .order_by(SNAPSHOT.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else _snapshot(row)

    def versions(self, site: str, month: ReportMonth) -> list[ReportSnapshot]:
        """Every version of the month's report, the first first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SNAPSHOT)
                .where(SNAPSHOT.c.site == site, SNAPSHOT.c.month == str(month))
                .order_by(SNAPSHOT.c.version)
            )
            return [_snapshot(r) for r in rows]

    def snapshots(self, month: ReportMonth | None = None) -> list[ReportSnapshot]:
        """The newest version of each site and month."""
        stmt = select(SNAPSHOT).order_by(
            SNAPSHOT.c.month.desc(), SNAPSHOT.c.site, SNAPSHOT.c.version.desc()
        )
        if month is not None:
            stmt = stmt.where(SNAPSHOT.c.month == str(month))
        newest: dict[tuple[str, str], ReportSnapshot] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(stmt):
                newest.setdefault((r.site, r.month), _snapshot(r))
        return list(newest.values())

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
        refused_under: str | None = None,
    ) -> None:
        """Record how a send ended. `refused_under`: the hub refused for good (or there is
        no key to sign with), under this fingerprint of the site's push configuration."""
        values: dict[str, object] = {
            "status": (PushStatus.SENT if delivered else PushStatus.FAILED).value,
            "attempts": PUSH.c.attempts + attempts,
            "lease_until": None,
            "last_attempt_at": now,
            "last_status_code": status_code,
            "last_error": error[:200] if error else None,
            "refused_under": None if delivered else refused_under,
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
                    refused_under=r.refused_under,
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
    def receive(self, snapshot: ReportSnapshot, *, key_id: str, now: datetime) -> ReceiptResult:
        """Keep a pushed report as the next version of its site and month. A report id seen
        before is a replay (or a conflict); another report for a month already held needs a
        reason (a correction), else it is refused and nothing changes."""
        for _ in range(3):
            seen = self._receipt_checksum(snapshot.report_id)
            if seen is not None:
                outcome = (
                    ReceiptOutcome.REPLAY if seen == snapshot.checksum else ReceiptOutcome.CONFLICT
                )
                return ReceiptResult(outcome, None)
            try:
                with self.engine.begin() as conn:
                    newest = conn.execute(
                        select(func.max(RECEIPT.c.version)).where(
                            RECEIPT.c.site == snapshot.site, RECEIPT.c.month == str(snapshot.month)
                        )
                    ).scalar_one_or_none()
                    if newest is not None and snapshot.reason is None:
                        return ReceiptResult(ReceiptOutcome.ALREADY_HELD, None)
                    version = (newest or 0) + 1
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
                            version=version,
                            reason=snapshot.reason,
                        )
                    )
                return ReceiptResult(ReceiptOutcome.ACCEPTED, version)
            except IntegrityError:
                continue  # the same report id, or the same version, stored at the same time
        raise VersionRace("the site's month kept changing while this report was stored")

    def _receipt_checksum(self, report_id: str) -> str | None:
        with self.engine.connect() as conn:
            seen: str | None = conn.execute(
                select(RECEIPT.c.checksum).where(RECEIPT.c.report_id == report_id)
            ).scalar_one_or_none()
        return seen

    def receipt_history(self, site: str, month: ReportMonth) -> list[Receipt]:
        """Every version the hub holds of a site's month, the first first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RECEIPT)
                .where(RECEIPT.c.site == site, RECEIPT.c.month == str(month))
                .order_by(RECEIPT.c.version)
            ).all()
        return [Receipt(_snapshot(r), r.key_id, r.received_at) for r in rows]

    def received(self, month: ReportMonth) -> list[Receipt]:
        """The current (newest) version of each site's report for `month`, by site."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RECEIPT)
                .where(RECEIPT.c.month == str(month))
                .order_by(RECEIPT.c.site, RECEIPT.c.version.desc())
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
        version=r["version"],
        reason=r["reason"],
    )


def _snapshot_values(snapshot: ReportSnapshot) -> dict[str, object]:
    return {
        "report_id": snapshot.report_id,
        "site": snapshot.site,
        "month": str(snapshot.month),
        "created_at": snapshot.created_at,
        "checksum": snapshot.checksum,
        "body": snapshot.body.decode("utf-8"),
        "version": snapshot.version,
        "reason": snapshot.reason,
    }


def _pending_push(snapshot: ReportSnapshot) -> dict[str, object]:
    """A month's push record, not yet attempted."""
    return {
        "site": snapshot.site,
        "month": str(snapshot.month),
        "report_id": snapshot.report_id,
        "status": PushStatus.PENDING.value,
        "attempts": 0,
    }
