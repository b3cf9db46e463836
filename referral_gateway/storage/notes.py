"""Notes between the instances that share one PostgreSQL database (LISTEN/NOTIFY).

`NoteChannel(engine, name)`: `send(note)` queues a `pg_notify`, sent on a thread of the
channel's own (so a caller, such as the thread relaying the pipeline's news, never waits for
the database, which may be slow or down); the first `listen(on_note)` opens a connection of
its own on a thread, LISTENs, and hands on every note another instance sent (a note names
the instance that sent it, so an instance never hears itself twice: it already acted on
what it sent). The live queue uses it so that a page open on one instance hears of
referrals another instance made.

A note is a hint, not a record: PostgreSQL drops notes for a listener that is not
connected, and the sending thread drops notes it cannot send (the database down), logging
the error's type only. Whoever listens must be able to catch up without them (the queue
page refreshes itself). A lost listening connection is opened again, waiting longer each
time (up to `max_backoff_s`). Notes carry ids and codes, never identifiable data.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_LISTEN_POLL_S = 0.5
_SEND_BATCH = 100


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
        self._outbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self.listening = threading.Event()  # set while the listening connection is open

    def send(self, note: str) -> None:
        """Tell the other instances (after the sender's own commit). Never waits or raises."""
        with self._lock:
            if self._stop.is_set():
                return
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_queued, name=f"notes-{self.name}-send", daemon=True
                )
                self._sender.start()
        self._outbox.put(note)

    def _send_queued(self) -> None:
        while True:
            first = self._outbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _SEND_BATCH:
                try:
                    more = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._outbox.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                with self.engine.connect() as conn:
                    for note in batch:
                        conn.execute(
                            text("select pg_notify(:name, :payload)"),
                            {"name": self.name, "payload": f"{self.instance} {note}"},
                        )
                    conn.commit()
            except Exception as exc:  # hints lost: the listeners catch up by themselves
                log.warning(
                    "%d note(s) to the other instances not sent: %s", len(batch), type(exc).__name__
                )

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
        """Send what is queued, stop listening."""
        with self._lock:
            self._stop.set()
            sender = self._sender
        if sender is not None:
            self._outbox.put(None)
            sender.join(timeout=10)
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
