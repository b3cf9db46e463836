"""Group commit: many senders' writes stored in one transaction, each told only after.

A `GroupCommitter` runs one thread that drains whatever is waiting, commits it as one group
and then resolves each submitter's future, so one flush to disk serves many messages and no
sender is answered before its write is durable. The HL7 intake (`IntakeWriter`) and the FHIR
writer are both built on it.

A `LoopGroupCommitter` does the same for callers on an event loop, on the loop itself: the
requests that are ready when a group starts form it, and no write crosses to another thread
and back (two thread switches, and in a busy process a wait for the interpreter lock each
way). The loop is blocked while a group commits, as it would be by any handler's own
database call; groups are small and the flush is one per group.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

from referral_gateway.services.errors import IntakeClosed
from referral_gateway.storage.inbox import Arrival, Stored

log = logging.getLogger(__name__)

U = TypeVar("U")
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)

StoreBatch = Callable[[Sequence[Arrival]], list[Stored]]


class _Grouped(Generic[U, R]):
    """What both committers share: the commit, the group size, the callback after each
    commit and what to do when a whole group fails."""

    def __init__(
        self,
        commit_group: Callable[[Sequence[U]], Sequence[R | Exception]],
        *,
        max_group: int,
        on_committed: Callable[[], None] | None,
        isolate_failures: bool,
    ) -> None:
        self._commit_group = commit_group
        self._max_group = max_group
        self.on_committed = on_committed
        self._isolate = isolate_failures

    def _commit(self, group: Sequence[tuple[U, _Answer[R]]]) -> None:
        commit_and_resolve(self._commit_group, group, self._isolate, self.on_committed)


class GroupCommitter(_Grouped[U, R]):
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
        super().__init__(
            commit_group,
            max_group=max_group,
            on_committed=on_committed,
            isolate_failures=isolate_failures,
        )
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


class LoopGroupCommitter(_Grouped[U, R]):
    """`GroupCommitter`'s contract for callers on one event loop, committing on the loop."""

    def __init__(
        self,
        commit_group: Callable[[Sequence[U]], Sequence[R | Exception]],
        *,
        max_group: int = 500,
        on_committed: Callable[[], None] | None = None,
        isolate_failures: bool = False,
    ) -> None:
        super().__init__(
            commit_group,
            max_group=max_group,
            on_committed=on_committed,
            isolate_failures=isolate_failures,
        )
        self._waiting: list[tuple[U, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def wait(self, unit: U) -> R:
        """Store one unit and wait until it is committed."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        self._waiting.append((unit, answer))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # the requests that are ready join this group
            group = self._waiting[: self._max_group]
            del self._waiting[: len(group)]
            self._commit(group)


class _Answer(Protocol[R_contra]):
    """A concurrent or an asyncio future: what `commit_and_resolve` needs of it."""

    def done(self) -> bool: ...
    def set_result(self, result: R_contra, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


def commit_and_resolve(
    commit_group: Callable[[Sequence[U]], Sequence[R | Exception]],
    group: Sequence[tuple[U, _Answer[R]]],
    isolate: bool,
    on_committed: Callable[[], None] | None,
) -> None:
    """Commit a group and answer each submitter. If the whole group fails, every submitter
    hears it or, with `isolate`, the units are committed one by one. An answer nobody waits
    for any more (a request cancelled meanwhile) is dropped."""
    try:
        results = commit_group([unit for unit, _ in group])
    except Exception as exc:
        if isolate and len(group) > 1:
            log.warning(
                "a group of %d writes failed (%s); committing one by one",
                len(group),
                type(exc).__name__,
            )
            for item in group:
                commit_and_resolve(commit_group, [item], isolate, on_committed)
            return
        # storage failed: every submitter must hear it (AE, 5xx)
        log.error("storing a group of %d writes failed: %s", len(group), type(exc).__name__)
        for _, answer in group:
            if not answer.done():
                answer.set_exception(exc)
        return
    for (_, answer), result in zip(group, results, strict=True):
        if answer.done():
            continue
        if isinstance(result, Exception):
            answer.set_exception(result)
        else:
            answer.set_result(result)
    if on_committed is not None:
        on_committed()


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
