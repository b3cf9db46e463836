"""Not-an-assault marks: a youth worker's judgement on a candidate (domain.dismissal).

The note is free text, encrypted like case notes; the reason is one word of a fixed list.
`marked_texts` reads back, for the corpus export, each mark with the ED free text of its
attendance and the patient's own identifiers (to scrub them): decrypted here, never logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from consent.keyring import KeyRing
from referral_gateway.domain.dismissal import NotAssaultMark, NotAssaultReason
from referral_gateway.storage.attendances import ATTENDANCE, IDENTITY_CONTEXT, REFERRAL
from referral_gateway.storage.dismissal_tables import MARKS
from referral_gateway.storage.keystore import EncryptedColumn, register_encrypted_column

MARK_NOTE_CONTEXT = "not_assault_mark.note"


# key rotation, the start-up key check and key usage cover the notes too
register_encrypted_column(
    EncryptedColumn("not_assault_mark.note_enc", MARKS, "note_enc", "key_id", MARK_NOTE_CONTEXT)
)


@dataclass(frozen=True, slots=True)
class MarkedText:
    """A mark with what the export needs: the attendance's source and free text, and the
    patient's own identifiers (for scrubbing only)."""

    mark: NotAssaultMark
    source: str
    free_text: tuple[str, ...]
    identifiers: tuple[str, ...]

    def __repr__(self) -> str:  # free text and identifiers are about a young person
        return f"MarkedText({self.mark!r}, texts={len(self.free_text)})"


class MarkStore:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def add(self, conn: Connection, mark: NotAssaultMark) -> None:
        conn.execute(
            insert(MARKS).values(
                referral_id=mark.referral_id,
                site=mark.site,
                reason=mark.reason.value,
                note_enc=(
                    self.keyring.encrypt_text(mark.note, context=MARK_NOTE_CONTEXT)
                    if mark.note
                    else None
                ),
                key_id=self.keyring.active_key_id if mark.note else None,
                marked_by=mark.marked_by,
                marked_at=mark.marked_at,
            )
        )

    def marked_texts(
        self, conn: Connection, *, since: datetime | None = None
    ) -> Iterator[MarkedText]:
        """Every mark (oldest first) with its attendance's free text; the note is not read."""
        stmt = (
            select(MARKS, ATTENDANCE.c.source, ATTENDANCE.c.identity_enc)
            .select_from(
                MARKS.join(REFERRAL, REFERRAL.c.id == MARKS.c.referral_id).join(
                    ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id
                )
            )
            .order_by(MARKS.c.marked_at, MARKS.c.referral_id)
        )
        if since is not None:
            stmt = stmt.where(MARKS.c.marked_at >= since)
        for row in conn.execute(stmt).all():
            ident: dict[str, object] = {}
            if row.identity_enc:
                ident = json.loads(
                    self.keyring.decrypt_text(row.identity_enc, context=IDENTITY_CONTEXT)
                )
            mark = NotAssaultMark(
                row.referral_id,
                row.site,
                NotAssaultReason(row.reason),
                "",
                row.marked_by,
                row.marked_at,
            )
            yield MarkedText(mark, row.source, _texts(ident.get("free_text")), _identifiers(ident))


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _identifiers(ident: dict[str, object]) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("nhs_number", "family_name", "birth_date", "phone", "visit_number"):
        value = ident.get(key)
        if isinstance(value, str) and value:
            found.append(value)
    for key in ("given_names", "local_ids"):
        found += _texts(ident.get(key))
    address = ident.get("address")
    if isinstance(address, str):
        found += [part.strip() for part in address.replace("^", ",").split(",") if part.strip()]
    elif isinstance(address, list):
        found += [str(part) for part in address if part]
    return tuple(found)
