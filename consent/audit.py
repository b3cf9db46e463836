"""The audit trail: append-only entries, each sealed with a hash of itself and the one before.

Every entry holds the SHA-256 of a canonical JSON of its own fields and of the previous
entry's hash, so the entries form a chain:

- editing an entry without recomputing its hash breaks that entry;
- editing an entry and recomputing its hash breaks the link from the entry after it;
- deleting or reordering entries leaves a gap in `seq` or a link that does not match.

`verify_chain` reports the first `seq` it cannot vouch for; everything before it checked out.

A chain can be rewritten wholesale, from the edited entry to the end, by someone able to
write the store and recompute hashes, and the last entries can simply be cut off. Against
that, keep the head (`ChainHead`: the last seq and hash) somewhere the store's writers cannot
change, e.g. in the monthly report or an off-host log, and pass it to `verify_chain`.

What goes in: ids and fixed words only. `actor` is a user id (or "system:<job>"), `subject`
a referral id or other non-identifying id, `why` a purpose code or fixed phrase chosen by the
program. Never a name, NHS number, date of birth, address, phone or text a user typed: the
trail is kept longer than the data it describes, and is read by people who may not see it.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from consent.errors import InvalidInputError, require_aware

GENESIS_HASH = "0" * 64


class AuditAction(enum.StrEnum):
    UNLOCK = "unlock"  # a basis for sharing came into force
    VIEW_IDENTIFIABLE = "view_identifiable"
    VIEW_REFUSED = "view_refused"
    EXPORT = "export"
    OUTBOUND_DELIVERY = "outbound_delivery"
    CONSENT_CHANGE = "consent_change"
    KEY_ROTATION = "key_rotation"
    RETENTION_ERASE = "retention_erase"
    ACCOUNT_CHANGE = "account_change"  # a staff account created or changed; `why` says how
    CASE_REOPENED = "case_reopened"  # a team lead reopened a closed referral
    NOT_ASSAULT_MARK = "not_assault_mark"  # a candidate marked not an assault; `why`: the reason


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime  # UTC, microseconds: stored so that it reads back exactly
    actor: str
    action: AuditAction
    subject: str
    why: str
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this entry's fields call for; differs from `hash` once it is edited."""
        return entry_hash(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            why=self.why,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The end of a chain as seen at some moment, kept outside the store."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    first_broken_seq: int | None  # entries before this seq were verified
    problem: str | None
    head: ChainHead | None = None  # the last verified entry, to keep elsewhere

    @property
    def verified_through(self) -> int:
        """The last seq verified (0 when none was)."""
        return self.head.seq if self.head else 0


def chain_entry(
    prev: AuditEntry | None,
    *,
    at: datetime,
    actor: str,
    action: AuditAction,
    subject: str,
    why: str,
) -> AuditEntry:
    """The entry that follows `prev` (None: the first entry of the chain)."""
    require_aware(at, "at")
    if not actor.strip() or not subject.strip():
        raise InvalidInputError("An audit entry needs an actor id and a subject id.")
    seq = prev.seq + 1 if prev else 1
    prev_hash = prev.hash if prev else GENESIS_HASH
    at = at.astimezone(UTC)
    action = AuditAction(action)
    digest = entry_hash(
        seq=seq, at=at, actor=actor, action=action, subject=subject, why=why, prev_hash=prev_hash
    )
    return AuditEntry(seq, at, actor, action, subject, why, prev_hash, digest)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    why: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's fields and the previous hash."""
    body = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": str(action),
        "subject": subject,
        "why": why,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    after: AuditEntry | None = None,
    head: ChainHead | None = None,
) -> ChainCheck:
    """Check `entries`, in storage order, from the start of the chain or from the entry after
    `after` (an entry verified earlier). With `head`, also check that the chain reaches that
    point with that hash, which catches a rewritten or cut-off end."""
    expected_seq = after.seq + 1 if after else 1
    expected_prev = after.hash if after else GENESIS_HASH
    last: ChainHead | None = ChainHead(after.seq, after.hash) if after else None

    def broken(seq: int, problem: str) -> ChainCheck:
        return ChainCheck(False, seq, problem, last)

    for entry in entries:
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                return broken(
                    expected_seq,
                    f"Entry {expected_seq} is missing: entry {entry.seq} comes next "
                    "(deleted or moved).",
                )
            return broken(
                expected_seq,
                f"Entry {entry.seq} appears where entry {expected_seq} should be "
                "(repeated or moved).",
            )
        if entry.prev_hash != expected_prev:
            return broken(
                entry.seq,
                f"Entry {entry.seq} does not follow the entry before it: an entry before "
                "it was changed, removed or moved.",
            )
        if entry.expected_hash() != entry.hash:
            return broken(entry.seq, f"Entry {entry.seq} was changed after it was written.")
        if head is not None and entry.seq == head.seq and entry.hash != head.hash:
            return broken(
                entry.seq,
                f"Entry {entry.seq} is not the entry recorded as the chain's head: the chain "
                "was rewritten from this entry or before.",
            )
        last = ChainHead(entry.seq, entry.hash)
        expected_seq, expected_prev = entry.seq + 1, entry.hash

    if head is not None and expected_seq <= head.seq:
        return broken(
            expected_seq,
            f"The chain ends at entry {expected_seq - 1}, before the recorded head "
            f"{head.seq}: entries were cut off.",
        )
    return ChainCheck(True, None, None, last)
