import threading
from datetime import UTC, datetime

import pytest

from referral_gateway.services.intake import IntakeWriter
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
