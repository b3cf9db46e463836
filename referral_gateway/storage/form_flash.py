"""Refused forms waiting for their page's next GET (`form_flash`): post/redirect/get across
the gateway's instances; and forms posted after their session ended, waiting for their owner
to sign in again (`web.kept_forms`, page "/kept-form", under a hash of the browser's key).

What was typed into a refused form may be a name or a safeguarding reason, so it is stored
encrypted with the key ring (context "form_flash"), under the session's hash and the page's
address, for a few minutes, and handed out once: reading it deletes it, and every write
deletes what expired. A row the key ring can no longer read is given up (the form comes
back empty); nothing here is a record of anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Table, delete, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from consent.keyring import KeyRing, KeyRingError
from referral_gateway.storage.types import UtcDateTime

CONTEXT = "form_flash"


class FormFlashRow(SQLModel, table=True):
    """One refused form of one session's page. Never logged."""

    __tablename__ = "form_flash"

    session_hash: str = Field(primary_key=True, max_length=64)
    page: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    payload_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


FORM_FLASH: Table = FormFlashRow.__table__  # type: ignore[attr-defined]


class FormFlashStore:
    def __init__(self, engine: Engine, keyring: KeyRing) -> None:
        self.engine = engine
        self.keyring = keyring

    def keep(
        self, session_hash: str, page: str, payload: str, *, now: datetime, until: datetime
    ) -> None:
        """Leave `payload` for the session's next GET of `page` (replacing any earlier one)."""
        sealed = self.keyring.encrypt_text(payload, context=CONTEXT)
        with self.engine.begin() as conn:
            conn.execute(delete(FORM_FLASH).where(FORM_FLASH.c.expires_at <= now))
            conn.execute(
                delete(FORM_FLASH).where(
                    FORM_FLASH.c.session_hash == session_hash, FORM_FLASH.c.page == page
                )
            )
            conn.execute(
                FORM_FLASH.insert().values(
                    session_hash=session_hash, page=page, expires_at=until, payload_enc=sealed
                )
            )

    def take(self, session_hash: str, page: str, *, now: datetime) -> str | None:
        """The payload left for this session's page, once; None when there is none, it
        expired or it can no longer be read."""
        where = (FORM_FLASH.c.session_hash == session_hash, FORM_FLASH.c.page == page)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(FORM_FLASH.c.expires_at, FORM_FLASH.c.payload_enc).where(*where)
            ).first()
            if row is None:
                return None
            conn.execute(delete(FORM_FLASH).where(*where))
        if row.expires_at <= now:
            return None
        try:
            return self.keyring.decrypt_text(row.payload_enc, context=CONTEXT)
        except KeyRingError:
            return None

    def peek(self, session_hash: str, page: str, *, now: datetime) -> str | None:
        """The payload left for this session's page, left in place; None as for `take`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(FORM_FLASH.c.expires_at, FORM_FLASH.c.payload_enc).where(
                    FORM_FLASH.c.session_hash == session_hash, FORM_FLASH.c.page == page
                )
            ).first()
        if row is None or row.expires_at <= now:
            return None
        try:
            return self.keyring.decrypt_text(row.payload_enc, context=CONTEXT)
        except KeyRingError:
            return None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(FORM_FLASH.c.page)).all())
