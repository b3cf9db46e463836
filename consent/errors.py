"""Everything `consent` raises, in one tree.

    ConsentError
    ├── InvalidInputError     a caller passed something no correct caller would: a naive
    │                         datetime, an empty user id, a negative retention period.
    │                         Also a ValueError.
    ├── ConsentHistoryError   a stored consent history breaks an invariant: records of another
    │                         referral, a gap or repeat in the sequence, time running backwards.
    └── KeyRingError          the key ring is missing, unreadable or does not match the data.

Refusals are not errors: a consent proposal that a youth worker can correct comes back as a
`consent.records.Refusal`, a refused access as a `consent.policy.ConsentDecision` with
`allowed=False`, a broken audit chain as a `consent.audit.ChainCheck` with `ok=False`.

No message here ever carries identifiable data or key material: ids and field names only.
"""

from __future__ import annotations

from datetime import datetime


class ConsentError(Exception):
    """Base of everything the consent package raises."""


class InvalidInputError(ConsentError, ValueError):
    """A programming error at the call site, not something a user can fix in a form."""


class ConsentHistoryError(ConsentError):
    """The consent history handed in is not one `record_consent` could have produced."""


class KeyRingError(ConsentError):
    """The key ring is missing, unreadable or does not match the data. The message says what
    to do; it never contains key material."""


def require_aware(value: datetime, name: str) -> None:
    """Raise `InvalidInputError` unless `value` is a timezone-aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be a timezone-aware datetime.")
