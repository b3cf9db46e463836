"""Notices to a site's team leads about staff accounts (`site_notice`), and who has read
them (`site_notice_read`).

A notice is a record, not a message: the pages show the unread ones to each team lead of
the site, and any later channel (e-mail, push) can read the same rows and keep its own
record of what it delivered. A notice names the account and who changed it (staff, not
patients) and holds nothing identifiable about anyone the gateway screens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Table, and_, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from referral_gateway.domain.accounts import NoticeKind
from referral_gateway.storage.types import UtcDateTime


class SiteNoticeRow(SQLModel, table=True):
    __tablename__ = "site_notice"

    id: str = Field(primary_key=True, max_length=36)
    site: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=30)
    account_id: str = Field(foreign_key="staff_user.id", max_length=36)
    role: str = Field(max_length=20)  # the account's role when the notice was made
    actor: str = Field(max_length=100)  # a user id, or cli:<OS user>, or system:<job>
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


class SiteNoticeReadRow(SQLModel, table=True):
    __tablename__ = "site_notice_read"

    notice_id: str = Field(foreign_key="site_notice.id", primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="staff_user.id", primary_key=True, max_length=36)
    read_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


NOTICES: Table = SiteNoticeRow.__table__  # type: ignore[attr-defined]
READS: Table = SiteNoticeReadRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SiteNotice:
    id: str
    site: str
    kind: NoticeKind
    account_id: str
    role: str
    actor: str
    created_at: datetime


def add_notices(
    conn: Connection,
    *,
    sites: frozenset[str],
    kind: NoticeKind,
    account_id: str,
    role: str,
    actor: str,
    now: datetime,
) -> None:
    """One notice per site, inside the caller's transaction (the account change's)."""
    if sites:
        conn.execute(
            insert(NOTICES),
            [
                {
                    "id": str(uuid.uuid4()),
                    "site": site,
                    "kind": kind.value,
                    "account_id": account_id,
                    "role": role,
                    "actor": actor[:100],
                    "created_at": now,
                }
                for site in sorted(sites)
            ],
        )


def notices_for_sites(
    conn: Connection, sites: frozenset[str], *, unread_by: str | None = None, limit: int = 50
) -> list[SiteNotice]:
    """The newest notices of these sites; with `unread_by`, only those that user has not
    marked as read and that are about someone else."""
    if not sites:
        return []
    stmt = select(NOTICES).where(NOTICES.c.site.in_(sorted(sites)))
    if unread_by is not None:
        stmt = stmt.outerjoin(
            READS, and_(READS.c.notice_id == NOTICES.c.id, READS.c.user_id == unread_by)
        ).where(READS.c.notice_id.is_(None), NOTICES.c.account_id != unread_by)
    stmt = stmt.order_by(NOTICES.c.created_at.desc(), NOTICES.c.id).limit(limit)
    return [
        SiteNotice(
            id=r.id,
            site=r.site,
            kind=NoticeKind(r.kind),
            account_id=r.account_id,
            role=r.role,
            actor=r.actor,
            created_at=r.created_at,
        )
        for r in conn.execute(stmt)
    ]


def mark_read(
    engine: Engine, notice_id: str, *, user_id: str, sites: frozenset[str], now: datetime
) -> bool:
    """Mark a notice of one of `sites` as read by the user; False if there is no such notice
    for them."""
    with engine.begin() as conn:
        site = conn.execute(select(NOTICES.c.site).where(NOTICES.c.id == notice_id)).scalar()
        if site is None or site not in sites:
            return False
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(READS).values(notice_id=notice_id, user_id=user_id, read_at=now)
                )
        except IntegrityError:
            pass  # read already
    return True
