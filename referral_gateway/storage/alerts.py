"""Alerts in the database: each person's choices, the devices they turned Web Push on for, and
one row per delivery (what was sent where, and how it went).

A delivery row holds the alert's four values (site, kind, count, link) and never any text
about a young person; `last_error` holds a short reason (an exception's class or an HTTP
status), never a response body.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Table, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from referral_gateway.domain.accounts import CASEWORK_ROLES
from referral_gateway.domain.alerts import (
    PERSONAL_CHANNELS,
    Alert,
    AlertChannel,
    AlertKind,
    AlertPreference,
    DeliveryStatus,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.accounts import USERS
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.storage.casework import CASES
from referral_gateway.storage.types import UtcDateTime


class AlertPreferenceRow(SQLModel, table=True):
    __tablename__ = "alert_preference"

    user_id: str = Field(primary_key=True, foreign_key="staff_user.id", max_length=36)
    on_shift: bool = False
    channels_json: str = "[]"
    email: str = Field(default="", max_length=254)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class PushSubscriptionRow(SQLModel, table=True):
    __tablename__ = "push_subscription"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="staff_user.id", max_length=36, index=True)
    endpoint: str = Field(max_length=2048, unique=True)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class AlertDeliveryRow(SQLModel, table=True):
    __tablename__ = "alert_delivery"
    __table_args__ = (Index("ix_alert_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str | None = Field(default=None, max_length=36, index=True)
    channel: str = Field(max_length=10)
    target: str = Field(default="", max_length=40)  # push subscription id, or "" (e-mail, chat)
    site: str = Field(max_length=12)
    kind: str = Field(max_length=30)
    count: int
    link: str = Field(max_length=80)
    status: str = Field(max_length=10)
    attempts: int = 0
    last_error: str = Field(default="", max_length=80)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


PREFS: Table = AlertPreferenceRow.__table__  # type: ignore[attr-defined]
PUSH: Table = PushSubscriptionRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = AlertDeliveryRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PushSubscription:
    id: int
    user_id: str
    endpoint: str
    p256dh: str
    auth: str

    def __repr__(self) -> str:  # the endpoint is a capability: keep it out of logs
        return f"PushSubscription(id={self.id})"


@dataclass(frozen=True)
class Delivery:
    id: int
    user_id: str | None
    channel: AlertChannel
    target: str
    alert: Alert
    status: DeliveryStatus
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    sent_at: datetime | None


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- choices ---------------------------------------------------------------------------
    def preference(self, user_id: str) -> tuple[bool, frozenset[AlertChannel], str]:
        """(on shift, channels, e-mail address) of a person; off and none by default."""
        with self.engine.connect() as conn:
            row = conn.execute(select(PREFS).where(PREFS.c.user_id == user_id)).first()
        if row is None:
            return False, frozenset(), ""
        return bool(row.on_shift), _channels(row.channels_json), row.email

    def save_preference(
        self,
        user_id: str,
        *,
        on_shift: bool,
        channels: frozenset[AlertChannel],
        email: str,
        now: datetime,
    ) -> None:
        values = {
            "on_shift": on_shift,
            "channels_json": json.dumps(sorted(c.value for c in channels)),
            "email": email,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(update(PREFS).where(PREFS.c.user_id == user_id).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(PREFS).values(user_id=user_id, **values))

    def caseworkers(self) -> list[AlertPreference]:
        """Every active youth worker and team lead, with their choices."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    USERS.c.id,
                    USERS.c.role,
                    USERS.c.sites_json,
                    PREFS.c.on_shift,
                    PREFS.c.channels_json,
                    PREFS.c.email,
                )
                .select_from(USERS.outerjoin(PREFS, PREFS.c.user_id == USERS.c.id))
                .where(USERS.c.active.is_(True))
            ).all()
        roles = {r.value for r in CASEWORK_ROLES}
        return [
            AlertPreference(
                user_id=r.id,
                team_lead=r.role == "team_lead",
                sites=frozenset(json.loads(r.sites_json)),
                on_shift=bool(r.on_shift),
                channels=_channels(r.channels_json or "[]"),
                email=r.email or "",
            )
            for r in rows
            if r.role in roles
        ]

    def unclaimed(self, referral_id: str) -> bool:
        """The referral is still new and nobody has it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(REFERRAL.c.status, CASES.c.assigned_to)
                .select_from(REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id))
                .where(REFERRAL.c.id == referral_id)
            ).first()
        return row is not None and row.status == ReferralStatus.NEW.value and not row.assigned_to

    def assignee(self, referral_id: str) -> str | None:
        """Who the referral is assigned to, if anyone."""
        with self.engine.connect() as conn:
            who = conn.execute(
                select(CASES.c.assigned_to).where(CASES.c.referral_id == referral_id)
            ).scalar_one_or_none()
        return str(who) if who else None

    # -- devices ---------------------------------------------------------------------------
    def add_push_subscription(
        self, user_id: str, *, endpoint: str, p256dh: str, auth: str, now: datetime
    ) -> None:
        """Turn alerts on for a device (the same endpoint again moves it to `user_id`)."""
        with self.engine.begin() as conn:
            conn.execute(delete(PUSH).where(PUSH.c.endpoint == endpoint))
            conn.execute(
                insert(PUSH).values(
                    user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=now
                )
            )

    def remove_push_subscription(self, subscription_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(PUSH).where(PUSH.c.id == subscription_id))

    def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PUSH).where(PUSH.c.user_id == user_id).order_by(PUSH.c.id)
            ).all()
        return [PushSubscription(r.id, r.user_id, r.endpoint, r.p256dh, r.auth) for r in rows]

    def push_subscription(self, subscription_id: int) -> PushSubscription | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(PUSH).where(PUSH.c.id == subscription_id)).first()
        return (
            None if r is None else PushSubscription(r.id, r.user_id, r.endpoint, r.p256dh, r.auth)
        )

    # -- deliveries ------------------------------------------------------------------------
    def record(
        self,
        alert: Alert,
        *,
        channel: AlertChannel,
        user_id: str | None,
        target: str = "",
        now: datetime,
    ) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(DELIVERY)
                    .values(
                        user_id=user_id,
                        channel=channel.value,
                        target=target,
                        site=alert.site,
                        kind=alert.kind.value,
                        count=alert.count,
                        link=alert.link,
                        status=DeliveryStatus.PENDING.value,
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                    .returning(DELIVERY.c.id)
                ).scalar_one()
            )

    def mark(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        now: datetime,
        error: str = "",
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Record an attempt's outcome; the last error stays on record after a success."""
        values: dict[str, object] = {
            "status": status.value,
            "attempts": DELIVERY.c.attempts + 1,
            "next_attempt_at": next_attempt_at,
            "sent_at": now if status is DeliveryStatus.SENT else None,
        }
        if error:
            values["last_error"] = error[:80]
        with self.engine.begin() as conn:
            conn.execute(update(DELIVERY).where(DELIVERY.c.id == delivery_id).values(**values))

    def due(self, *, now: datetime, limit: int = 50) -> list[Delivery]:
        """Deliveries whose next attempt is due: failed ones, and pending ones a stopped
        process recorded but never tried."""
        waiting = (DeliveryStatus.FAILED.value, DeliveryStatus.PENDING.value)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DELIVERY)
                .where(
                    DELIVERY.c.status.in_(waiting),
                    DELIVERY.c.next_attempt_at <= now,
                )
                .order_by(DELIVERY.c.next_attempt_at)
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]

    def get(self, delivery_id: int) -> Delivery | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(DELIVERY).where(DELIVERY.c.id == delivery_id)).first()
        return None if r is None else _delivery(r)

    def deliveries(self, *, site: str | None = None) -> list[Delivery]:
        query = select(DELIVERY).order_by(DELIVERY.c.id)
        if site is not None:
            query = query.where(DELIVERY.c.site == site)
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query).all()]


def _channels(raw: str) -> frozenset[AlertChannel]:
    known = {c.value for c in PERSONAL_CHANNELS}
    return frozenset(AlertChannel(v) for v in json.loads(raw) if v in known)


def _delivery(r: object) -> Delivery:
    m = r._mapping  # type: ignore[attr-defined]
    return Delivery(
        id=m["id"],
        user_id=m["user_id"],
        channel=AlertChannel(m["channel"]),
        target=m["target"],
        alert=Alert(m["site"], AlertKind(m["kind"]), m["count"], m["link"]),
        status=DeliveryStatus(m["status"]),
        attempts=m["attempts"],
        last_error=m["last_error"],
        next_attempt_at=m["next_attempt_at"],
        sent_at=m["sent_at"],
    )


def failed_deliveries(engine: Engine, sites: Collection[str]) -> list[Delivery]:
    """The alerts of `sites` whose last attempt failed or that were given up, newest first:
    what a team lead's live view shows (channel, kind, count and the short reason only)."""
    if not sites:
        return []
    failing = (DeliveryStatus.FAILED.value, DeliveryStatus.GAVE_UP.value)
    query = (
        select(DELIVERY)
        .where(DELIVERY.c.site.in_(sorted(sites)), DELIVERY.c.status.in_(failing))
        .order_by(DELIVERY.c.id.desc())
        .limit(50)
    )
    with engine.connect() as conn:
        return [_delivery(r) for r in conn.execute(query).all()]
