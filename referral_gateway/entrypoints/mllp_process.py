"""The MLLP listener in a process of its own, for `serve`.

An HL7 sender waits for each ACK before it sends its next message, so the ACK path must not
wait for anything but its own commit. In the serve process it would: one Python process runs
one thread of Python at a time, and there the HTTP server validates FHIR Bundles, renders
pages and runs the scheduled jobs. So `serve` runs the listener, with an intake of its own (its
own connection, its own group-commit writer, the key ring file), in a child process: a FHIR
burst then takes CPU from it as any other process would, but never holds it behind the serve
process's lock. The store-then-acknowledge rule is unchanged: the child answers a message only
after it has committed it. The pipeline stays in its own process (`pipeline_process`).

Two pipes join the processes:

- child to parent: "ready" with the port once it listens (or "failed" with why); then, in
  batches, whether something was committed (the parent wakes the pipeline) and each reply's
  latency (`rg_ack_latency_seconds` lives in the parent, with the other metrics).
- parent to child: each processed message's final state, from the pipeline (what an enhanced
  mode application ACK waits for). Closing it tells the child to stop: it lets the frames in
  hand finish and answers them, then exits. The child stops the same way when the parent dies
  (even by SIGKILL): it reads end-of-file.

If the child dies, the parent says so in its log and starts another on the same port; the
readiness check says "not ready" meanwhile, and senders reconnect as they do after any drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing as mp
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from referral_gateway.config import ConfigError, Settings
from referral_gateway.entrypoints.allocator import limit_malloc_arenas
from referral_gateway.entrypoints.process_name import name_this_process
from referral_gateway.entrypoints.supervised import ChildStartError, Supervised
from referral_gateway.observability.logs import configure_logging

log = logging.getLogger(__name__)

States = tuple[tuple[int, str], ...]
"""(message id, final state) of one pipeline batch."""


class ListenerStartError(ChildStartError):
    """The listener process could not listen (the port is taken, a certificate is missing...).
    The message says why, with no message content in it."""


class MllpProcess(Supervised):
    """Starts, relays for, restarts and stops the MLLP listener's own process."""

    what = "MLLP listener process"
    relay_name = "mllp-relay"

    def __init__(
        self,
        settings: Settings,
        *,
        on_stored: Callable[[], None],
        on_replied: Callable[[float], None] | None = None,
        restart_delay: float = 1.0,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(restart_delay=restart_delay)
        self.settings = settings
        self.on_stored = on_stored
        self.on_replied = on_replied
        self.start_timeout = start_timeout
        self._port = 0
        self._ready = threading.Event()
        self._outgoing: queue.SimpleQueue[States | None] = queue.SimpleQueue()
        self._forwarder: threading.Thread | None = None

    def start(self) -> MllpProcess:
        """Returns once the child listens; raises `ListenerStartError` if it cannot."""
        self._start_supervising()
        self._forwarder = threading.Thread(target=self._forward, name="mllp-forward", daemon=True)
        self._forwarder.start()
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def serving(self) -> bool:
        """Readiness: the child said it listens and is still alive."""
        process = self._process
        return (
            self._ready.is_set()
            and not self._stopping.is_set()
            and process is not None
            and process.is_alive()
        )

    def completed(self, states: Sequence[tuple[int, str]]) -> None:
        """The pipeline's final states, passed on to the child (never blocks the caller)."""
        if states:
            self._outgoing.put(tuple(states))

    def stop(self) -> None:
        self._outgoing.put(None)
        self._stop_supervising()  # the child answers the frames in hand and exits
        if self._forwarder is not None:
            self._forwarder.join(timeout=5)

    async def stop_async(self) -> None:
        """`stop` from an event loop (serve's), without blocking it."""
        await asyncio.to_thread(self.stop)

    # -- parent side ---------------------------------------------------------------------
    def _spawn(self) -> Connection:
        """Start a child and wait until it listens; its news pipe, for the relay. A child
        started again listens on the port the first one had (the settings' may be 0: "any
        free port")."""
        settings = self.settings
        if self._port:
            settings = dataclasses.replace(settings, mllp_port=self._port)
        ctx = mp.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
        control_read, control_write = ctx.Pipe(duplex=False)
        news_read, news_write = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=run_mllp_process,
            args=(settings, control_read, news_write),
            name="referral-gateway-mllp",
            daemon=True,
        )
        process.start()
        control_read.close()  # only the child holds these ends now: end-of-file means "gone"
        news_write.close()
        try:
            if not news_read.poll(self.start_timeout):
                raise ListenerStartError(
                    f"the MLLP listener process did not start in {self.start_timeout:.0f} s"
                )
            kind, detail = news_read.recv()
        except (EOFError, OSError):
            process.join(timeout=5)
            news_read.close()
            raise ListenerStartError(
                f"the MLLP listener process ended before it listened (exit code {process.exitcode})"
            ) from None
        except ListenerStartError:
            process.kill()
            process.join(timeout=5)
            news_read.close()
            raise
        if kind != "ready":
            process.join(timeout=5)
            news_read.close()
            raise ListenerStartError(str(detail))
        self._port = int(detail)
        self._adopt(process, control_write)
        self._ready.set()
        log.info("MLLP listener process started (pid %s, port %d)", process.pid, self._port)
        return news_read

    def _lost(self) -> None:
        self._ready.clear()

    def _relay_news(self, news: Connection) -> None:
        while True:
            try:
                _kind, stored, latencies = news.recv()
            except (EOFError, OSError):
                return
            try:
                if stored:
                    self.on_stored()
                if self.on_replied is not None:
                    for seconds in latencies:
                        self.on_replied(seconds)
            except Exception as exc:  # a listener must never stop the relay
                log.warning("relaying MLLP listener news failed: %s", type(exc).__name__)

    def _forward(self) -> None:
        while True:
            states = self._outgoing.get()
            if states is None:
                return
            with self._lock:
                control = self._to_child
            if control is None:
                continue  # no child right now: its waiters ask the database instead
            # OSError: the child is gone (or stopping); the relay thread starts another
            with contextlib.suppress(OSError):
                control.send(("processed", states))


# -- child side -------------------------------------------------------------------------
class _Outbox:
    """The child's news to the parent, sent on a thread of its own so that neither the
    listener's loop nor the intake's writer ever waits on the pipe; what piled up meanwhile
    goes in one message."""

    _STORED = object()

    def __init__(self, news: Connection) -> None:
        self._news = news
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mllp-outbox", daemon=True)
        self._thread.start()

    def say(self, message: tuple[str, object]) -> None:
        """Send `message` as it is, after what was queued before it."""
        self._queue.put(message)

    def stored(self) -> None:
        self._queue.put(self._STORED)

    def replied(self, seconds: float) -> None:
        self._queue.put(seconds)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            try:
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            stored = any(item is self._STORED for item in items)
            latencies = tuple(item for item in items if isinstance(item, float))
            try:
                for item in items:
                    if isinstance(item, tuple):
                        self._news.send(item)
                if stored or latencies:
                    self._news.send(("news", stored, latencies))
            except OSError:
                return  # the parent is gone: the control pipe tells the main thread
            if None in items:
                return


def _why(exc: BaseException) -> str:
    """What stopped the listener, for the parent to raise: the text of the errors that say
    what to fix (a port taken, a file missing, a setting wrong), only the type otherwise."""
    if isinstance(exc, OSError | ConfigError):
        return str(exc)
    return type(exc).__name__


def _stop_now(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # out of the wait on the control pipe, through its `finally`


def run_mllp_process(settings: Settings, control: Connection, news: Connection) -> None:
    """The child's whole life: build the intake and listener, say "ready", pass the
    pipeline's states to the watch until the control pipe closes, then stop."""
    from referral_gateway.wiring.mllp import build_listener_process

    # Ctrl-C reaches the whole group: the parent decides. SIGTERM (the parent's last resort,
    # and multiprocessing's at the parent's exit) stops the listener as the pipe closing does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_now)
    configure_logging(settings.log_format)  # as the parent's: RG_LOG_FORMAT, no identifiers
    name_this_process("rg-mllp")
    limit_malloc_arenas()  # as serve's, before the listener's threads start
    outbox = _Outbox(news)
    try:
        parts = build_listener_process(
            settings, on_committed=outbox.stored, on_replied=outbox.replied
        )
    except Exception as exc:
        outbox.say(("failed", _why(exc)))
        outbox.close()
        return
    try:
        parts.listener.start()
    except Exception as exc:
        parts.close()
        outbox.say(("failed", _why(exc)))
        outbox.close()
        return
    outbox.say(("ready", parts.listener.port))
    try:
        while True:
            try:
                _kind, states = control.recv()
            except (EOFError, OSError):
                return  # the parent stopped us, or died
            parts.watch.completed(states)
    finally:
        parts.listener.stop()
        parts.close()
        outbox.close()
