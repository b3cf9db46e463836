"""Signed report push: HMAC-SHA256 over the timestamp and the exact body bytes.

    X-Report-Key-Id:    which shared secret signed it (the hub maps key ids to sites)
    X-Report-Timestamp: seconds since the Unix epoch when it was signed
    X-Report-Signature: "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))

The hub refuses a request whose key id it does not know, whose signature does not match,
or whose timestamp is more than `window` seconds away from its own clock (either way), so a
captured request stops working after a few minutes. Inside the window a replay is caught by
the report id and checksum the hub has already received (see `report_snapshot`).
A refusal is a value; only a misconfigured secret raises.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

KEY_ID_HEADER = "X-Report-Key-Id"
TIMESTAMP_HEADER = "X-Report-Timestamp"
SIGNATURE_HEADER = "X-Report-Signature"
SCHEME = "v1"
DEFAULT_WINDOW_S = 300
MIN_SECRET_BYTES = 32


class SigningKeyError(ValueError):
    """A signing secret too short to be safe. Never carries the secret."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if not self.key_id or len(self.key_id) > 64:
            raise SigningKeyError("a signing key needs an id of 1 to 64 characters")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise SigningKeyError(
                f"signing key {self.key_id!r} is shorter than {MIN_SECRET_BYTES} bytes"
            )

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, secret=<redacted>)"


@dataclass(frozen=True, slots=True)
class Verified:
    key_id: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # missing_header, unknown_key, bad_timestamp, stale, bad_signature


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def sign(body: bytes, key: SigningKey, *, now: datetime) -> dict[str, str]:
    """The headers that sign `body` at `now`."""
    timestamp = int(now.timestamp())
    return {
        KEY_ID_HEADER: key.key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key.secret, timestamp, body),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, SigningKey],
    *,
    now: datetime,
    window_s: int = DEFAULT_WINDOW_S,
) -> Verified | Refused:
    """Check a pushed request's signature and freshness. Header names are matched without
    regard to case."""
    lowered = {k.lower(): v for k, v in headers.items()}
    key_id = lowered.get(KEY_ID_HEADER.lower())
    stamp = lowered.get(TIMESTAMP_HEADER.lower())
    given = lowered.get(SIGNATURE_HEADER.lower())
    if not key_id or not stamp or not given:
        return Refused("missing_header")
    key = keys.get(key_id)
    if key is None:
        return Refused("unknown_key")
    if not stamp.isdigit() or len(stamp) > 12:
        return Refused("bad_timestamp")
    timestamp = int(stamp)
    expected = signature(key.secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return Refused("bad_signature")
    if abs(int(now.timestamp()) - timestamp) > window_s:
        return Refused("stale")
    return Verified(key_id, timestamp)
