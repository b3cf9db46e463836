"""What `serve`'s two child processes (the pipeline's and the MLLP listener's) have in common:
a pipe to the child whose closing tells it to stop, a pipe from it read by a relay thread,
and a new child when one dies.

A subclass says how to start its child (`_spawn`: start it, hand the pipe to it to `_adopt`,
return the pipe from it) and what to do with what the child sends (`_relay_news`, which
returns at end-of-file).
"""

from __future__ import annotations

import logging
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)


class ChildStartError(RuntimeError):
    """A child could not start. The message says why, with no message content in it."""


class Supervised:
    """Starts, relays for, restarts and stops one child process of `serve`."""

    what = "child process"  # for the log: "the pipeline process", "the MLLP listener process"
    relay_name = "child-relay"

    def __init__(self, *, restart_delay: float) -> None:
        self.restart_delay = restart_delay
        self._lock = threading.Lock()
        self._to_child: Connection | None = None
        self._process: BaseProcess | None = None
        self._relay: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start_supervising(self) -> None:
        """Start the first child (raising what stops it) and the relay thread."""
        self._stopping.clear()
        news = self._spawn()
        self._relay = threading.Thread(
            target=self._run, args=(news,), name=self.relay_name, daemon=True
        )
        self._relay.start()

    def _stop_supervising(self) -> None:
        """Close the pipe to the child (it finishes what it has in hand and exits) and wait for
        it; SIGTERM after 30 s, SIGKILL if even that fails."""
        self._stopping.set()
        with self._lock:
            if self._to_child is not None:
                self._to_child.close()
                self._to_child = None
        process = self._process
        if process is not None:
            process.join(timeout=30)
            if process.is_alive():
                log.warning("the %s did not stop in 30 s; terminating it", self.what)
                process.terminate()
                process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if self._relay is not None and self._relay is not threading.current_thread():
            self._relay.join(timeout=5)

    def _adopt(self, process: BaseProcess, to_child: Connection) -> None:
        """Called by `_spawn` once the child runs: it is the one to watch and write to. A
        child that started after `stop` was asked is let go at once."""
        with self._lock:
            self._process = process
            if self._stopping.is_set():
                to_child.close()
            else:
                self._to_child = to_child

    def _lost(self) -> None:
        """The child's pipe ended (hook: the listener is no longer ready)."""

    def _spawn(self) -> Connection:
        raise NotImplementedError

    def _relay_news(self, news: Connection) -> None:
        raise NotImplementedError

    def _run(self, news: Connection) -> None:
        while True:
            self._relay_news(news)
            news.close()
            self._lost()
            if self._stopping.is_set():
                return
            process = self._process
            if process is not None:
                process.join(timeout=5)
            log.error(
                "the %s stopped unexpectedly (exit code %s); starting another",
                self.what,
                process.exitcode if process is not None else None,
            )
            with self._lock:
                if self._to_child is not None:
                    self._to_child.close()
                    self._to_child = None
            while True:
                if self._stopping.wait(self.restart_delay):
                    return
                try:
                    news = self._spawn()
                    break
                except ChildStartError as exc:
                    log.error("restarting the %s failed: %s", self.what, exc)
