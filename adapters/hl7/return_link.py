"""An outbound MLLP connection that carries application ACKs to a sender's return address.

One `ReturnLink` per return address: a queue and one task that connects when there is
something to send, writes each ACK framed, and on any failure closes, waits (1 s doubling to
`max_backoff_s`) and tries the same ACK again, so ACKs leave in order and none is skipped.
Whatever the other end writes back (some engines answer every message, ACKs included) is
read and thrown away. A full queue drops its oldest ACK and counts it: an application ACK
is owed but the message is safe either way.

Log lines name the return address and counts, never message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from adapters.hl7.mllp import frame

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReturnLinkStats:
    sent: int = 0
    failures: int = 0
    dropped: int = 0


class ReturnLink:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_queue: int = 10_000,
        connect_timeout_s: float = 10.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.stats = ReturnLinkStats()
        self._queue: deque[bytes] = deque()
        self._max_queue = max_queue
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._discarder: asyncio.Task[None] | None = None

    def send(self, message: bytes) -> None:
        """Queue one unframed ACK; it leaves as soon as the link can carry it."""
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.stats.dropped += 1
            log.warning(
                "application ACK queue for %s:%d full; oldest dropped", self.host, self.port
            )
        self._queue.append(message)
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            try:
                await self._deliver(self._queue[0])
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.stats.failures += 1
                log.warning(
                    "application ACK to %s:%d not delivered (%s); retrying in %gs",
                    self.host,
                    self.port,
                    type(exc).__name__,
                    backoff,
                )
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            self._queue.popleft()
            self.stats.sent += 1
            backoff = 1.0

    async def _deliver(self, message: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            await self._disconnect()
            async with asyncio.timeout(self._connect_timeout_s):
                reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._discarder = asyncio.get_running_loop().create_task(
                _discard_replies(reader, self._writer)
            )
        self._writer.write(frame(message))
        async with asyncio.timeout(self._connect_timeout_s):
            await self._writer.drain()

    async def _disconnect(self) -> None:
        if self._discarder is not None:
            self._discarder.cancel()
            self._discarder = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._writer.wait_closed()
            self._writer = None


async def _discard_replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and drop what the other end writes; when it closes, close our side too so the
    next ACK opens a fresh connection."""
    with contextlib.suppress(OSError):
        while await reader.read(65536):
            pass
    writer.close()
