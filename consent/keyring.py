"""Field encryption key ring: AES-GCM for identifiable fields, HMAC for lookups.

The ring lives in a JSON file outside the database (by default `<data dir>/keyring.json`,
mode 0600). Each key has an id; every ciphertext names the key that made it, so a rotation
can add a key, make it active and re-encrypt at leisure while old ciphertexts stay readable.
The HMAC ("blind index") key never rotates with the encryption keys: lookups by NHS number
(re-attendance, merges) must keep matching across rotations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consent.errors import KeyRingError as KeyRingError  # re-exported: raised from here

_MAGIC = b"rg1"
_NONCE_BYTES = 12
_TAG_BYTES = 16


@dataclass
class KeyRing:
    keys: dict[str, bytes]
    active_key_id: str
    index_key: bytes
    path: Path | None = None
    _aead: dict[str, AESGCM] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active_key_id!r}, keys={sorted(self.keys)!r})"

    # -- persistence -------------------------------------------------------------------
    @classmethod
    def generate(cls, path: Path | None = None) -> KeyRing:
        key_id = _new_key_id()
        ring = cls(
            keys={key_id: AESGCM.generate_key(bit_length=256)},
            active_key_id=key_id,
            index_key=secrets.token_bytes(32),
            path=path,
        )
        if path is not None:
            ring.save()
        return ring

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        if not path.exists():
            raise KeyRingError(
                f"No key ring at {path}. Restore the key ring file from your backup, or set "
                "RG_KEYRING_FILE to its location. A new ring would not decrypt existing data."
            )
        try:
            raw = json.loads(path.read_text("utf-8"))
            keys = {k: base64.b64decode(v) for k, v in raw["keys"].items()}
            ring = cls(
                keys=keys,
                active_key_id=raw["active"],
                index_key=base64.b64decode(raw["index_key"]),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyRingError(
                f"The key ring at {path} is unreadable ({type(exc).__name__}). Restore it from "
                "your backup."
            ) from None
        if (
            ring.active_key_id not in ring.keys
            or any(len(k) != 32 for k in keys.values())
            or len(ring.index_key) != 32
        ):
            raise KeyRingError(f"The key ring at {path} is damaged. Restore it from your backup.")
        return ring

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        return cls.load(path) if path.exists() else cls.generate(path)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {
                "active": self.active_key_id,
                "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
                "index_key": base64.b64encode(self.index_key).decode(),
            },
            indent=2,
        )
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def add_active_key(self) -> str:
        """Add a fresh key and make it the one new ciphertexts use. Returns its id."""
        key_id = _new_key_id()
        self.keys[key_id] = AESGCM.generate_key(bit_length=256)
        self.active_key_id = key_id
        self.save()
        return key_id

    def retire_key(self, key_id: str) -> None:
        """Remove a key once nothing is encrypted with it any more (after every ciphertext
        it made went through `reencrypt`). Ciphertexts it made become unreadable."""
        if key_id == self.active_key_id:
            raise KeyRingError(
                f"Key {key_id!r} is the active key. Add a new active key and re-encrypt "
                "before retiring it."
            )
        if key_id not in self.keys:
            raise KeyRingError(f"Key {key_id!r} is not in the key ring.")
        del self.keys[key_id]
        self._aead.pop(key_id, None)
        self.save()

    # -- encryption ----------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt with the active key. `context` (e.g. "attendance.identity") is bound as
        associated data so a ciphertext cannot be moved to another column unnoticed."""
        key_id = self.active_key_id
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = self._cipher(key_id).encrypt(nonce, plaintext, context.encode())
        kid = key_id.encode()
        return _MAGIC + bytes([len(kid)]) + kid + nonce + body

    def decrypt(self, token: bytes, *, context: str) -> bytes:
        key_id, nonce, body = _split(token)
        if key_id not in self.keys:
            raise KeyRingError(
                f"Data was encrypted with key {key_id!r}, which is not in the key ring. "
                "Restore the key ring that holds it."
            )
        try:
            return self._cipher(key_id).decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise KeyRingError(
                f"Data does not decrypt with key {key_id!r}: the key ring does not match "
                "this database, or the data was altered."
            ) from None

    def encrypt_text(self, text: str, *, context: str) -> bytes:
        return self.encrypt(text.encode("utf-8"), context=context)

    def decrypt_text(self, token: bytes, *, context: str) -> str:
        return self.decrypt(token, context=context).decode("utf-8")

    @staticmethod
    def key_id_of(token: bytes) -> str:
        return _split(token)[0]

    # -- rotation ------------------------------------------------------------------------
    def needs_reencryption(self, token: bytes) -> bool:
        """True when `token` was made with a key other than the active one."""
        return self.key_id_of(token) != self.active_key_id

    def reencrypt(self, token: bytes, *, context: str) -> bytes:
        """`token` encrypted again with the active key (unchanged if it already is). The
        plaintext never leaves this method."""
        if not self.needs_reencryption(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    # -- keyed hashes ----------------------------------------------------------------------
    def blind_index(self, value: str, *, purpose: str) -> str:
        """A keyed hash for equality lookups without storing the plain value."""
        mac = hmac.new(self.index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def _cipher(self, key_id: str) -> AESGCM:
        aead = self._aead.get(key_id)
        if aead is None:
            aead = self._aead[key_id] = AESGCM(self.keys[key_id])
        return aead


def _new_key_id() -> str:
    return "k" + secrets.token_hex(4)


def _split(token: bytes) -> tuple[str, bytes, bytes]:
    not_ours = KeyRingError("A stored value is not a ciphertext made by this gateway.")
    if not token.startswith(_MAGIC) or len(token) < len(_MAGIC) + 2:
        raise not_ours
    n = token[len(_MAGIC)]
    start = len(_MAGIC) + 1
    if len(token) < start + n + _NONCE_BYTES + _TAG_BYTES:
        raise not_ours
    try:
        key_id = token[start : start + n].decode("ascii")
    except UnicodeDecodeError:
        raise not_ours from None
    nonce = token[start + n : start + n + _NONCE_BYTES]
    return key_id, nonce, token[start + n + _NONCE_BYTES :]
