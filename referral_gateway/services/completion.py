"""Waiting for a stored message to be processed: what an HL7 sender that asked for an
application acknowledgement (MSH-16) is owed."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future


class ProcessingWatch:
    """Resolves waiters when the pipeline reports a message done. Remembers the most recent
    completions, so a waiter that arrives after the work finished is answered at once; for
    older messages it asks `lookup` (the stored state)."""

    def __init__(self, lookup: Callable[[int], str | None], *, remember: int = 10_000) -> None:
        self._lookup = lookup
        self._remember = remember
        self._recent: OrderedDict[int, str] = OrderedDict()
        self._waiters: dict[int, list[Future[str]]] = {}
        self._lock = threading.Lock()

    def completed(self, states: Sequence[tuple[int, str]]) -> None:
        """Called by the pipeline after each committed batch."""
        with self._lock:
            for message_id, state in states:
                self._recent[message_id] = state
                for fut in self._waiters.pop(message_id, []):
                    if not fut.done():
                        fut.set_result(state)
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)

    async def wait(self, message_id: int, timeout: float) -> str | None:
        """The final state (processed, filtered, error), or None if not done in time."""
        fut: Future[str] = Future()
        with self._lock:
            if message_id in self._recent:
                return self._recent[message_id]
            self._waiters.setdefault(message_id, []).append(fut)
        state = await asyncio.to_thread(self._lookup, message_id)
        if state is not None and state != "pending":
            self._forget(message_id, fut)
            return state
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        except TimeoutError:
            self._forget(message_id, fut)
            return None

    def _forget(self, message_id: int, fut: Future[str]) -> None:
        with self._lock:
            waiters = self._waiters.get(message_id, [])
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                self._waiters.pop(message_id, None)
