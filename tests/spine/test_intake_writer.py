import asyncio
import threading
from datetime import UTC, datetime

import pytest

from referral_gateway.services.intake import IntakeWriter, LoopGroupCommitter
from referral_gateway.storage.inbox import Arrival, Stored

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def arrival(key: str) -> Arrival:
    return Arrival("hl7v2", "S", key, "ADT^A01", "RXX01", b"x", NOW)


class RecordingStore:
    """A fake store: remembers each group it was asked to commit."""

    def __init__(self, fail: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.fail = fail
        self.release = threading.Event()
        self.release.set()

    def __call__(self, arrivals):
        self.release.wait(5)
        if self.fail:
            raise RuntimeError("disk full")
        self.groups.append([a.message_key for a in arrivals])
        return [Stored(i, False) for i, _ in enumerate(arrivals)]


def test_messages_waiting_together_are_committed_as_one_group():
    store = RecordingStore()
    store.release.clear()
    writer = IntakeWriter(store).start()
    futures = [writer.submit(arrival(str(i))) for i in range(5)]
    store.release.set()
    for f in futures:
        f.result(5)
    writer.stop()
    assert sum(len(g) for g in store.groups) == 5
    assert len(store.groups) <= 2  # the first alone at most, then the rest together


def test_every_submitter_hears_when_storage_fails():
    writer = IntakeWriter(RecordingStore(fail=True)).start()
    futures = [writer.submit(arrival(str(i))) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError):
            f.result(5)
    writer.stop()


def test_the_commit_callback_runs_after_each_group():
    woken = threading.Event()
    writer = IntakeWriter(RecordingStore(), on_committed=woken.set).start()
    writer.store(arrival("a"))
    assert woken.wait(5)
    writer.stop()


# -- the same contract on an event loop ---------------------------------------------------
def loop_committer(store, **kwargs) -> LoopGroupCommitter:
    return LoopGroupCommitter(store, **kwargs)


def test_requests_on_the_loop_that_are_ready_together_commit_as_one_group():
    store = RecordingStore()
    committer = loop_committer(store)

    async def five_requests():
        return await asyncio.gather(*(committer.wait(arrival(str(i))) for i in range(5)))

    assert len(asyncio.run(five_requests())) == 5
    assert store.groups == [["0", "1", "2", "3", "4"]]


def test_on_the_loop_a_failed_group_is_retried_one_by_one_so_only_the_culprit_fails():
    class FailsWithKeyTwo(RecordingStore):
        def __call__(self, arrivals):
            if any(a.message_key == "2" for a in arrivals):
                raise RuntimeError("constraint")
            return super().__call__(arrivals)

    committed = []
    committer = loop_committer(
        FailsWithKeyTwo(), isolate_failures=True, on_committed=lambda: committed.append(1)
    )

    async def three_requests():
        return await asyncio.gather(
            *(committer.wait(arrival(str(i))) for i in range(1, 4)), return_exceptions=True
        )

    outcomes = asyncio.run(three_requests())
    assert [type(o).__name__ for o in outcomes] == ["Stored", "RuntimeError", "Stored"]
    assert len(committed) == 2  # once per group that was committed


def test_a_request_cancelled_while_its_group_commits_does_not_stop_the_others():
    store = RecordingStore()
    committer = loop_committer(store)

    async def one_cancelled():
        first = asyncio.ensure_future(committer.wait(arrival("gone")))
        second = asyncio.ensure_future(committer.wait(arrival("kept")))
        await asyncio.sleep(0)
        first.cancel()
        return await asyncio.wait_for(second, 5)

    assert isinstance(asyncio.run(one_cancelled()), Stored)
    assert store.groups == [["gone", "kept"]]  # committed all the same; only the answer is dropped
