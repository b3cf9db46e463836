"""Notes between the instances that share one PostgreSQL database (LISTEN/NOTIFY).

`NoteChannel(engine, name)`: `send(note)` is a `pg_notify` on the engine; the first
`listen(on_note)` opens a connection of its own on a thread, LISTENs, and hands on every
note another instance sent (a note names the instance that sent it, so an instance never
hears itself twice: it already acted on what it sent). The live queue uses it so that a
page open on one instance hears of referrals another instance made.

A note is a hint, not a record: PostgreSQL drops notes for a listener that is not
connected, and `send` drops a note it cannot send (the database down), logging its type
only. Whoever listens must be able to catch up without them (the queue page refreshes
itself). A lost listening connection is opened again, waiting longer each time (up to
`max_backoff_s`). Notes carry ids and codes, never identifiable data.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_LISTEN_POLL_S = 0.5


class NoteChannel:
    def __init__(self, engine: Engine, name: str, *, max_backoff_s: float = 5.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("notes between instances need PostgreSQL")
        if not name.isidentifier():
            raise ValueError("a channel name is a plain identifier")
        self.engine = engine
        self.name = name
        self.instance = uuid.uuid4().hex[:12]
        self._max_backoff_s = max_backoff_s
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while the listening connection is open

    def send(self, note: str) -> None:
        """Tell the other instances (after the sender's own commit). Never raises."""
        try:
            with self.engine.connect() as conn:
                conn.execute(
                    text("select pg_notify(:name, :payload)"),
                    {"name": self.name, "payload": f"{self.instance} {note}"},
                )
                conn.commit()
        except Exception as exc:  # a hint lost: the listeners catch up by themselves
            log.warning("a note to the other instances was not sent: %s", type(exc).__name__)

    def listen(self, on_note: Callable[[str], None]) -> None:
        """Hand `on_note` (on the channel's thread) every note another instance sends."""
        with self._lock:
            self._listeners.append(on_note)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"notes-{self.name}", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        import psycopg  # the PostgreSQL driver (the `postgres` extra)

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        backoff = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.name}")
                    self.listening.set()
                    backoff = 0.25
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=_LISTEN_POLL_S):
                            self._hand_on(notify.payload)
            except Exception as exc:
                if self.listening.is_set():
                    log.warning(
                        "listening for other instances' notes stopped (%s); reconnecting",
                        type(exc).__name__,
                    )
                self.listening.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
        self.listening.clear()

    def _hand_on(self, payload: str) -> None:
        sender, _, note = payload.partition(" ")
        if sender == self.instance:
            return
        with self._lock:
            listeners = list(self._listeners)
        for on_note in listeners:
            try:
                on_note(note)
            except Exception as exc:  # one listener's failure must not stop the others
                log.warning("a note listener failed: %s", type(exc).__name__)
