"""The files a replay has finished (`replay_file`), so that a second run skips them.

A file is known by its path, size, modification time and a hash of its content: a file
appended to or rewritten since is read again (what it held before is then a duplicate in
the inbox, not a second attendance). A file is recorded only once all its messages are
stored and processed; a run killed part way leaves it unrecorded and the next run reads it
again, the inbox's own duplicate check keeping what was already stored from counting twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from referral_gateway.storage.operations_tables import ReplayFileRow

REPLAY_FILE: Table = ReplayFileRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int
    content_hash: str

    @property
    def key(self) -> str:
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}\0{self.content_hash}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def identify(path: Path, data: bytes) -> FileIdentity:
    """The identity of a file whose bytes are `data` (read once by the caller)."""
    stat = path.stat()
    return FileIdentity(
        path=str(path.resolve()),
        size=len(data),
        mtime_ns=stat.st_mtime_ns,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


class ReplayFiles:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def finished(self, file: FileIdentity) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(REPLAY_FILE.c.file_key).where(REPLAY_FILE.c.file_key == file.key)
            ).first()
        return found is not None

    def record(self, file: FileIdentity, *, kind: str, messages: int, now: datetime) -> None:
        """Mark `file` finished (a second record of the same file is no error)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(REPLAY_FILE).values(
                        file_key=file.key,
                        path=file.path[:2000],
                        size=file.size,
                        content_hash=file.content_hash,
                        kind=kind,
                        messages=messages,
                        finished_at=now,
                    )
                )
        except IntegrityError:
            pass  # another run finished the same file
