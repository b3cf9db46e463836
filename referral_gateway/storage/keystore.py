"""The key ring as the gateway uses it: opened safely, checked against the database, reloaded
when the file changes, and the registry of every encrypted column for rotation.

Start-up (`open_keyring`):
- no key ring file, and the database already holds ciphertexts → refuse, whatever
  `create` says: a new ring would make the data unreadable (and new data would be encrypted
  under a key nobody else has);
- no file and an empty database → create one, if `create`;
- a ring that does not decrypt the canary (`key_canary`, one known plaintext) → refuse, with
  the key id the database expects. A database from before the canary is checked by
  decrypting one stored value of each encrypted column instead, then gets its canary.

Rotation while the gateway runs: `referral-gateway keys rotate` (another process) adds a key to
the file and makes it active. A running gateway's `WatchedKeyRing` looks at the file's mtime,
size and inode before it encrypts (at most once per `interval` seconds), and at once when it
meets a ciphertext under a key it does not hold; it then reloads the file and encrypts under
the new active key. A file whose index (HMAC) key differs is a different ring: it is refused
and the ring in memory kept, with an error in the log.

No instance writes under a key the others have moved on from: rotation re-encrypts the
canary first, so the canary's key is the newest key in use. Before it encrypts (at most once
per `interval`, and on every write while it is behind) a running gateway's ring compares it
with its own keys; a ring that lacks the canary's key reloads its file at once and, if its
view of the file is still older than the database (a ring bind-mounted as a single file, a
copy that was not updated), refuses to encrypt (`KeyRingError`: an MLLP sender gets AE and
resends, nothing is stored) rather than write under a key that is being retired.

Which ciphertexts a key made is read from the ciphertext itself (its first bytes name the key),
not from the `key_id` columns, so a row whose `key_id` column is stale is still found.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, func, select, update
from sqlalchemy.engine import Connection, Engine

from consent.keyring import KeyRing, KeyRingError
from referral_gateway.storage.attendances import ATTENDANCE, BAY_CONTEXT, IDENTITY_CONTEXT
from referral_gateway.storage.consent_store import DETAILS_CONTEXT
from referral_gateway.storage.consent_tables import CONSENT, KeyCanaryRow
from referral_gateway.storage.dialect import insert_ignoring_duplicates
from referral_gateway.storage.inbox import INBOX, PAYLOAD_CONTEXT

log = logging.getLogger(__name__)

CANARY: Table = KeyCanaryRow.__table__  # type: ignore[attr-defined]
CANARY_CONTEXT = "key_canary.token"
CANARY_PLAINTEXT = b"referral-gateway key ring canary, version 1"
_MAGIC = b"rg1"  # consent.keyring's ciphertext header: magic, key id length, key id


# -- the encrypted columns ---------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of ciphertexts made by the key ring, with the column naming its key."""

    name: str  # "table.column", for reports
    table: Table
    token: str
    key_id: str | None
    context: str  # the associated data the ciphertexts were made with

    @property
    def id_column(self) -> Column[Any]:
        (pk,) = self.table.primary_key.columns
        return pk

    @property
    def token_column(self) -> Column[Any]:
        return self.table.c[self.token]


ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn("key_canary.token", CANARY, "token", "key_id", CANARY_CONTEXT),
    EncryptedColumn("inbound_message.payload_enc", INBOX, "payload_enc", "key_id", PAYLOAD_CONTEXT),
    EncryptedColumn(
        "attendance.identity_enc", ATTENDANCE, "identity_enc", "key_id", IDENTITY_CONTEXT
    ),
    EncryptedColumn("attendance.bay_enc", ATTENDANCE, "bay_enc", None, BAY_CONTEXT),
    EncryptedColumn(
        "consent_record.details_enc", CONSENT, "details_enc", "key_id", DETAILS_CONTEXT
    ),
]


def register_encrypted_column(column: EncryptedColumn) -> None:
    """Add a column (e.g. case notes) to rotation, start-up checks and key usage. The table
    needs a single-column primary key; call at import time of the module defining it."""
    if all(c.name != column.name for c in ENCRYPTED_COLUMNS):
        ENCRYPTED_COLUMNS.append(column)


def token_prefix(key_id: str) -> bytes:
    """The first bytes of every ciphertext made with `key_id`."""
    kid = key_id.encode("ascii")
    return _MAGIC + bytes([len(kid)]) + kid


def made_with(column: EncryptedColumn, key_id: str) -> Any:
    prefix = token_prefix(key_id)
    return func.substr(column.token_column, 1, len(prefix)) == prefix


def not_made_with(column: EncryptedColumn, key_id: str) -> Any:
    prefix = token_prefix(key_id)
    tok = column.token_column
    return tok.is_not(None) & (func.substr(tok, 1, len(prefix)) != prefix)


# -- a key ring that follows its file ----------------------------------------------------------


class WatchedKeyRing(KeyRing):
    """A `KeyRing` that reloads its file when it changes (see the module docstring)."""

    _interval: float
    _clock: Callable[[], float]
    _checked: float
    _signature: tuple[int, int, int] | None
    _reload_lock: threading.Lock
    _database_key: Callable[[], str | None] | None
    _database_checked: float
    _behind_database: bool

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> WatchedKeyRing:
        signature = _signature(path)
        base = KeyRing.load(path)
        ring = cls(
            keys=dict(base.keys),
            active_key_id=base.active_key_id,
            index_key=base.index_key,
            path=path,
        )
        ring._interval = interval
        ring._clock = clock
        ring._checked = clock()
        ring._signature = signature
        ring._reload_lock = threading.Lock()
        ring._database_key = None
        ring._database_checked = clock()
        ring._behind_database = False
        return ring

    def follow_database(self, database_key: Callable[[], str | None]) -> None:
        """Check before encrypting that this ring holds `database_key()` (the key the
        database's canary is under: the newest in use)."""
        self._database_key = database_key
        self._database_checked = self._clock() - self._interval  # look at the first write

    def refresh(self, *, force: bool = False) -> bool:
        """Reload the file if it changed. Returns True when the keys in memory changed."""
        now = self._clock()
        if not force and now - self._checked < self._interval:
            return False
        assert self.path is not None
        with self._reload_lock:
            self._checked = now
            signature = _signature(self.path)
            if signature is None or signature == self._signature:
                return False
            try:
                fresh = KeyRing.load(self.path)
            except KeyRingError as exc:
                log.error("key ring file changed but cannot be loaded; keeping keys: %s", exc)
                return False
            self._signature = signature
            if fresh.index_key != self.index_key:
                log.error(
                    "the key ring file now holds a different ring (its index key differs); "
                    "keeping the keys in memory. Restore the original key ring file."
                )
                return False
            changed = fresh.keys != self.keys or fresh.active_key_id != self.active_key_id
            self.keys = dict(fresh.keys)  # first the keys, then the id that must be among them
            self.active_key_id = fresh.active_key_id
            if changed:
                log.info("key ring reloaded: active key %s", self.active_key_id)
            return changed

    def save(self) -> None:
        super().save()
        if self.path is not None:
            self._signature = _signature(self.path)

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        self.refresh()
        self._keep_up_with_database()
        return super().encrypt(plaintext, context=context)

    def _keep_up_with_database(self) -> None:
        if self._database_key is None:
            return
        now = self._clock()
        if not self._behind_database and now - self._database_checked < self._interval:
            return
        self._database_checked = now
        try:
            newest = self._database_key()
        except Exception:  # the database is not answering: the write itself will fail
            return
        if newest is not None and newest not in self.keys:
            self.refresh(force=True)
        self._behind_database = newest is not None and newest not in self.keys
        if self._behind_database:
            log.error(
                "the database is under key %s, which the key ring file here (%s) lacks: "
                "nothing is encrypted until this instance sees the current ring",
                newest,
                self.path,
            )
            raise KeyRingError(
                f"The key ring at {self.path} is older than the database (which is under "
                f"key {newest}). Share the key ring's directory between the instances, or "
                "copy the current key ring here."
            )

    def decrypt(self, token: bytes, *, context: str) -> bytes:
        if self.key_id_of(token) not in self.keys:
            self.refresh(force=True)  # another process may have rotated
        return super().decrypt(token, context=context)

    def needs_reencryption(self, token: bytes) -> bool:
        self.refresh()
        return super().needs_reencryption(token)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# -- start-up ----------------------------------------------------------------------------------


def database_holds_ciphertexts(engine: Engine) -> bool:
    with engine.connect() as conn:
        for column in ENCRYPTED_COLUMNS:
            found = conn.execute(
                select(column.id_column).where(column.token_column.is_not(None)).limit(1)
            ).first()
            if found is not None:
                return True
    return False


def migration_keyring(path: Path) -> KeyRing | None:
    """The key ring for `migrate` to encrypt existing rows with, if its file can be read
    (it is checked properly by `open_keyring` once the schema is current)."""
    try:
        return KeyRing.load(path) if path.exists() else None
    except (KeyRingError, OSError, ValueError):
        return None


def open_keyring(
    engine: Engine,
    path: Path,
    *,
    create: bool = True,
    now: datetime,
    interval: float = 1.0,
) -> WatchedKeyRing:
    """The key ring at `path`, checked against the database (migrated already). Raises
    `KeyRingError`, saying what to do, when it is missing or does not match."""
    if not path.exists():
        if database_holds_ciphertexts(engine):
            raise KeyRingError(
                f"The database holds encrypted data but there is no key ring at {path}. "
                "Restore the key ring file from your backup (or set RG_KEYRING_FILE to its "
                "location). The gateway will not create a new ring: that would leave the "
                "existing data unreadable."
            )
        if not create:
            KeyRing.load(path)  # raises, saying where the ring was expected
        KeyRing.generate(path)
    ring = WatchedKeyRing.open(path, interval=interval)
    check_keyring(engine, ring, now=now)
    ring.follow_database(lambda: canary_key_id(engine))
    return ring


def canary_key_id(engine: Engine) -> str | None:
    """The key the database's canary is under: rotation re-encrypts it first, so it is the
    newest key in use (None before the canary is made)."""
    with engine.connect() as conn:
        token = _canary(conn)
    return None if token is None else KeyRing.key_id_of(token)


def check_keyring(engine: Engine, keyring: KeyRing, *, now: datetime) -> None:
    """Raise `KeyRingError` unless `keyring` decrypts this database's canary. A database
    without a canary is checked on one stored value per encrypted column, then given one."""
    where = f" at {keyring.path}" if keyring.path else ""
    with engine.connect() as conn:
        token = _canary(conn)
        if token is None:
            _check_samples(conn, keyring, where)
    if token is None:
        canary = keyring.encrypt(CANARY_PLAINTEXT, context=CANARY_CONTEXT)
        with engine.begin() as conn:
            conn.execute(
                insert_ignoring_duplicates(conn, CANARY, ["id"]).values(
                    id=1, token=canary, key_id=KeyRing.key_id_of(canary), created_at=now
                )
            )
            token = _canary(conn)
        assert token is not None
    try:
        plain = keyring.decrypt(token, context=CANARY_CONTEXT)
    except KeyRingError as exc:
        raise KeyRingError(
            f"The key ring{where} does not match this database ({exc}) Start with the key "
            "ring file that belongs to this database: restore it from your backup, or set "
            "RG_KEYRING_FILE to it."
        ) from None
    if plain != CANARY_PLAINTEXT:
        raise KeyRingError("The key ring canary in the database was altered.")


def _canary(conn: Connection) -> bytes | None:
    token: bytes | None = conn.execute(
        select(CANARY.c.token).where(CANARY.c.id == 1)
    ).scalar_one_or_none()
    return token


def _check_samples(conn: Connection, keyring: KeyRing, where: str) -> None:
    for column in ENCRYPTED_COLUMNS:
        if column.table is CANARY:
            continue
        token = conn.execute(
            select(column.token_column)
            .where(column.token_column.is_not(None))
            .order_by(column.id_column.desc())
            .limit(1)
        ).scalar_one_or_none()
        if token is None:
            continue
        try:
            keyring.decrypt(token, context=column.context)
        except KeyRingError as exc:
            raise KeyRingError(
                f"The key ring{where} does not decrypt {column.name} ({exc}) Start with the "
                "key ring file that belongs to this database: restore it from your backup, "
                "or set RG_KEYRING_FILE to it."
            ) from None


# -- rotation ----------------------------------------------------------------------------------


def reencrypt_column(
    engine: Engine, keyring: KeyRing, column: EncryptedColumn, *, batch_size: int = 200
) -> int:
    """Re-encrypt under the active key every value of `column` made with another key, in
    batches of `batch_size`, each a short transaction of its own. A row changed by someone
    else between reading and writing is left alone (compare-and-set on the old ciphertext)
    and found again by the next pass. Returns how many values were re-encrypted."""
    done = 0
    after: Any = None
    pk, tok = column.id_column, column.token_column
    while True:
        active = keyring.active_key_id
        stmt = select(pk, tok).where(not_made_with(column, active)).order_by(pk).limit(batch_size)
        if after is not None:
            stmt = stmt.where(pk > after)
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return done
        with engine.begin() as conn:  # the first statement writes: no stale read on SQLite
            for row_id, old in rows:
                new = keyring.reencrypt(old, context=column.context)
                values: dict[str, Any] = {column.token: new}
                if column.key_id is not None:
                    values[column.key_id] = KeyRing.key_id_of(new)
                result = conn.execute(
                    update(column.table).where(pk == row_id, tok == old).values(values)
                )
                done += int(result.rowcount or 0)
        after = rows[-1][0]


def values_not_on_active_key(engine: Engine, keyring: KeyRing) -> int:
    total = 0
    with engine.connect() as conn:
        for column in ENCRYPTED_COLUMNS:
            total += int(
                conn.execute(
                    select(func.count())
                    .select_from(column.table)
                    .where(not_made_with(column, keyring.active_key_id))
                ).scalar_one()
            )
    return total


def key_usage(
    engine: Engine, key_ids: Iterable[str], columns: Iterable[EncryptedColumn] | None = None
) -> dict[str, dict[str, int]]:
    """For each encrypted column, how many values each key made, and how many were made with
    a key not in `key_ids` (under "unknown")."""
    ids = list(key_ids)
    usage: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for column in columns if columns is not None else ENCRYPTED_COLUMNS:
            tok = column.token_column
            total = int(
                conn.execute(
                    select(func.count()).select_from(column.table).where(tok.is_not(None))
                ).scalar_one()
            )
            counts = {
                kid: int(
                    conn.execute(
                        select(func.count()).select_from(column.table).where(made_with(column, kid))
                    ).scalar_one()
                )
                for kid in ids
            }
            counts["unknown"] = total - sum(counts.values())
            usage[column.name] = counts
    return usage
