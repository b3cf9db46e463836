"""Group commit: many senders' messages stored in one transaction, each told only after.

Every channel (MLLP connections, FHIR requests, replay) hands its arrivals to one
`IntakeWriter`. A single thread drains whatever is waiting, commits it as one group and
then resolves each submitter's future, so one fsync serves many messages and no message
is acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from referral_gateway.storage.inbox import Arrival, Stored

log = logging.getLogger(__name__)

StoreBatch = Callable[[Sequence[Arrival]], list[Stored]]


class IntakeClosed(Exception):
    """The writer has stopped; nothing more can be stored."""


class IntakeWriter:
    def __init__(
        self,
        store_batch: StoreBatch,
        *,
        max_group: int = 500,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._store_batch = store_batch
        self._max_group = max_group
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue[tuple[Arrival, Future[Stored]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._stopping = False

    def start(self) -> IntakeWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, arrival: Arrival) -> Future[Stored]:
        if self._stopping:
            raise IntakeClosed("the intake writer is stopped")
        fut: Future[Stored] = Future()
        self._queue.put((arrival, fut))
        return fut

    def store(self, arrival: Arrival, timeout: float = 30.0) -> Stored:
        """Store one arrival and wait until it is committed."""
        return self.submit(arrival).result(timeout)

    async def store_async(self, arrival: Arrival) -> Stored:
        return await asyncio.wrap_future(self.submit(arrival))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop_after = False
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                group.append(item)
            self._commit(group)
            if stop_after:
                return

    def _commit(self, group: list[tuple[Arrival, Future[Stored]]]) -> None:
        try:
            results = self._store_batch([arrival for arrival, _ in group])
        except Exception as exc:  # storage failed: every submitter must hear it (AE, 5xx)
            log.error("storing a group of %d messages failed: %s", len(group), type(exc).__name__)
            for _, fut in group:
                fut.set_exception(exc)
            return
        for (_, fut), result in zip(group, results, strict=True):
            fut.set_result(result)
        if self._on_committed is not None:
            self._on_committed()
