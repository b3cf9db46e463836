"""Group commit: many senders' writes stored in one transaction, each told only after.

A `GroupCommitter` runs one thread that drains whatever is waiting, commits it as one group
and then resolves each submitter's future, so one flush to disk serves many messages and no
sender is answered before its write is durable. The HL7 intake (`IntakeWriter`) and the FHIR
writer are both built on it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from referral_gateway.storage.inbox import Arrival, Stored

log = logging.getLogger(__name__)

U = TypeVar("U")
R = TypeVar("R")

StoreBatch = Callable[[Sequence[Arrival]], list[Stored]]


class IntakeClosed(Exception):
    """The writer has stopped; nothing more can be stored."""


class GroupCommitter(Generic[U, R]):
    """`commit_group(units)` stores a group in one transaction and returns one result per
    unit, in order; a result that is an exception goes to that unit's submitter alone. If
    the whole group fails, every submitter hears it, or, with `isolate_failures`, the units
    are committed one by one so only the culprit fails."""

    def __init__(
        self,
        commit_group: Callable[[Sequence[U]], Sequence[R | Exception]],
        *,
        name: str = "group-commit",
        max_group: int = 500,
        on_committed: Callable[[], None] | None = None,
        isolate_failures: bool = False,
    ) -> None:
        self._commit_group = commit_group
        self._max_group = max_group
        self.on_committed = on_committed
        self._isolate = isolate_failures
        self._queue: queue.SimpleQueue[tuple[U, Future[R]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopping = False

    def start(self) -> GroupCommitter[U, R]:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def submit(self, unit: U) -> Future[R]:
        if self._stopping:
            raise IntakeClosed("the writer is stopped")
        fut: Future[R] = Future()
        self._queue.put((unit, fut))
        return fut

    def wait(self, unit: U, timeout: float = 30.0) -> R:
        """Store one unit and wait until it is committed."""
        return self.submit(unit).result(timeout)

    async def wait_async(self, unit: U) -> R:
        return await asyncio.wrap_future(self.submit(unit))

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

    def _commit(self, group: list[tuple[U, Future[R]]]) -> None:
        try:
            results = self._commit_group([unit for unit, _ in group])
        except Exception as exc:
            if self._isolate and len(group) > 1:
                log.warning(
                    "a group of %d writes failed (%s); committing one by one",
                    len(group),
                    type(exc).__name__,
                )
                for item in group:
                    self._commit([item])
                return
            # storage failed: every submitter must hear it (AE, 5xx)
            log.error("storing a group of %d writes failed: %s", len(group), type(exc).__name__)
            for _, fut in group:
                fut.set_exception(exc)
            return
        for (_, fut), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        if self.on_committed is not None:
            self.on_committed()


class IntakeWriter(GroupCommitter[Arrival, Stored]):
    """The inbox's group commit: every channel's raw messages, durable before answered."""

    def __init__(
        self,
        store_batch: StoreBatch,
        *,
        max_group: int = 500,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            store_batch, name="intake-writer", max_group=max_group, on_committed=on_committed
        )

    def store(self, arrival: Arrival, timeout: float = 30.0) -> Stored:
        return self.wait(arrival, timeout)

    async def store_async(self, arrival: Arrival) -> Stored:
        return await self.wait_async(arrival)
