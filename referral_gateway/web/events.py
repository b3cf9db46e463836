"""Live queue events: from any thread (the pipeline's, a request's) to every open page.

Each open queue page holds a `Subscription` bound to the event loop that serves it. The
pipeline thread calls `publish`, which hands the event to each interested subscription's
loop with `call_soon_threadsafe`: nothing touches an asyncio queue from the wrong thread.
A slow page that lets its queue fill loses the oldest events; it refreshes the whole list on
the next one anyway.

Several instances: `share` (set by the composition root on PostgreSQL) also hands each event
published here to the other instances, whose pages get it through `deliver`; an event from
another instance is never shared again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Collection

from referral_gateway.services.casework import QueueEvent

log = logging.getLogger(__name__)

_CLOSED = None


class Subscription:
    def __init__(self, sites: Collection[str], loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.sites = frozenset(sites)
        self.loop = loop
        self.queue: asyncio.Queue[QueueEvent | None] = asyncio.Queue(maxsize=size)

    def _offer(self, event: QueueEvent | None) -> None:  # runs on self.loop
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)

    async def next(self, timeout: float) -> QueueEvent | None:
        """The next event; raises TimeoutError when none came within `timeout`. None means
        the stream is closing."""
        return await asyncio.wait_for(self.queue.get(), timeout)


class Broadcaster:
    def __init__(
        self, *, queue_size: int = 100, share: Callable[[QueueEvent], None] | None = None
    ) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._size = queue_size
        self.share = share

    def subscribe(self, sites: Collection[str]) -> Subscription:
        """Call from the event loop that will read the subscription."""
        sub = Subscription(sites, asyncio.get_running_loop(), self._size)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, event: QueueEvent) -> None:
        """To this instance's pages and, with `share`, the other instances'. Safe from any
        thread."""
        self.deliver(event)
        if self.share is not None:
            self.share(event)

    def deliver(self, event: QueueEvent) -> None:
        """To this instance's pages only (an event another instance shared). Safe from any
        thread."""
        with self._lock:
            targets = [s for s in self._subs if event.site in s.sites]
        for sub in targets:
            self._deliver(sub, event)

    def close_all(self) -> None:
        with self._lock:
            targets = list(self._subs)
        for sub in targets:
            self._deliver(sub, _CLOSED)

    def _deliver(self, sub: Subscription, event: QueueEvent | None) -> None:
        try:
            sub.loop.call_soon_threadsafe(sub._offer, event)
        except RuntimeError:  # that page's loop has closed
            self.unsubscribe(sub)


def encode_queue_event(event: QueueEvent) -> str:
    """An event as a note for the other instances (ids and codes only)."""
    return json.dumps([event.kind, event.referral_id, event.site, event.change])


def decode_queue_event(note: str) -> QueueEvent:
    kind, referral_id, site, change = json.loads(note)
    return QueueEvent(str(kind), str(referral_id), str(site), str(change))
