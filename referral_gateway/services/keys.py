"""Key rotation and retirement, run while the gateway keeps working.

`rotate_keys` adds a new active key to the key ring file, then re-encrypts every stored
ciphertext made with another key, in small batches with short transactions. Running
gateways pick the new key up from the file (`storage.keystore.WatchedKeyRing`), but one may
still write a value under the old key for a moment: a write that began before it reloaded.
So when a pass finds nothing left, rotation waits `settle_seconds` (longer than the
gateways' reload interval and their longest write transaction) and looks once more; it
finishes only after a pass after the wait finds nothing. If values remain after
`max_passes` (a gateway that does not reload?), the report says how many; `reencrypt`
resumes without adding another key.

`retire_key` removes an old key from the ring, and refuses while any value still uses it.
Each step is in the audit trail (`key_rotation`), with key ids only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from consent.audit import AuditAction
from consent.keyring import KeyRing, KeyRingError
from referral_gateway.domain.clock import Clock
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.keystore import (
    ENCRYPTED_COLUMNS,
    key_usage,
    reencrypt_column,
    values_not_on_active_key,
)
from referral_gateway.storage.unit_of_work import unit_of_work

SYSTEM_ACTOR = "system:keys"


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    previous_key_id: str
    reencrypted: int
    passes: int
    remaining: int  # values still under another key (0 when rotation completed)

    @property
    def complete(self) -> bool:
        return self.remaining == 0


@dataclass(frozen=True)
class Pace:
    """How re-encryption goes: values per transaction, how long a pass that found nothing
    waits before the last look (a gateway still writing under the old key may add some),
    and the most passes."""

    batch_size: int = 200
    settle_seconds: float = 5.0
    max_passes: int = 20
    sleep: Callable[[float], None] = time.sleep


def rotate_keys(
    engine: Engine,
    keyring: KeyRing,
    audit: AuditStore,
    *,
    clock: Clock,
    actor: str = SYSTEM_ACTOR,
    pace: Pace = Pace(),
) -> RotationReport:
    """Add a new active key (saved to the key ring file) and re-encrypt everything under it."""
    previous = keyring.active_key_id
    new = keyring.add_active_key()
    _audit(engine, audit, clock(), actor, new, f"new_active_key:previous={previous}")
    return reencrypt(engine, keyring, audit, clock=clock, actor=actor, pace=pace, previous=previous)


def reencrypt(
    engine: Engine,
    keyring: KeyRing,
    audit: AuditStore,
    *,
    clock: Clock,
    actor: str = SYSTEM_ACTOR,
    pace: Pace = Pace(),
    previous: str | None = None,
) -> RotationReport:
    """Re-encrypt what is under another key than the active one (on its own: finish a
    rotation); `previous` is the key the report names as replaced (default: the active)."""
    previous = keyring.active_key_id if previous is None else previous
    total = passes = 0
    settled = False
    while passes < pace.max_passes:
        passes += 1
        n = sum(
            reencrypt_column(engine, keyring, column, batch_size=pace.batch_size)
            for column in list(ENCRYPTED_COLUMNS)
        )
        total += n
        if n == 0 and settled:
            break
        if n == 0:
            pace.sleep(pace.settle_seconds)
            settled = True
        else:
            settled = False
    remaining = values_not_on_active_key(engine, keyring)
    why = f"reencrypted:{total}" + (f":remaining={remaining}" if remaining else "")
    _audit(engine, audit, clock(), actor, keyring.active_key_id, why)
    return RotationReport(keyring.active_key_id, previous, total, passes, remaining)


def retire_key(
    engine: Engine,
    keyring: KeyRing,
    audit: AuditStore,
    key_id: str,
    *,
    clock: Clock,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Remove `key_id` from the ring. Raises `KeyRingError` while any value still uses it."""
    if key_id not in keyring.keys:
        raise KeyRingError(f"Key {key_id!r} is not in the key ring.")
    usage = key_usage(engine, [key_id])
    in_use = sum(counts[key_id] for counts in usage.values())
    if in_use:
        raise KeyRingError(
            f"Key {key_id!r} still encrypts {in_use} stored value(s). Run "
            "`referral-gateway keys reencrypt` first."
        )
    keyring.retire_key(key_id)
    _audit(engine, audit, clock(), actor, key_id, "retired")


def _audit(
    engine: Engine, audit: AuditStore, at: datetime, actor: str, key_id: str, why: str
) -> None:
    with unit_of_work(engine) as uow:
        audit.append(
            uow,
            at=at,
            actor=actor,
            action=AuditAction.KEY_ROTATION,
            subject=f"key:{key_id}",
            why=why,
        )
