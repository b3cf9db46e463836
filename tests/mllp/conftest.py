"""`running_server`: a real MllpServer listening on a free port, in a thread with its own loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from adapters.hl7.mllp import FrameHandler, MllpServer, MllpStats

T = TypeVar("T")


@dataclass
class RunningServer:
    server: MllpServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self) -> MllpStats:
        return self.server.stats

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run a coroutine on the server's loop; returns a future the test thread can wait on."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, *, timeout: float | None = None) -> None:
        self.submit(self.server.stop(timeout=timeout)).result(timeout=5)

    def _shut_down(self) -> None:
        self.stop(timeout=1)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def running_server() -> Iterator[Any]:
    """Call it with a handler (and any MllpServer keyword options) to get a started server."""
    started: list[RunningServer] = []

    def start(handler: FrameHandler, **options: Any) -> RunningServer:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="mllp-test-loop", daemon=True)
        thread.start()
        server = MllpServer(handler, host="127.0.0.1", port=0, **options)
        running = RunningServer(server=server, loop=loop, thread=thread)
        started.append(running)
        running.submit(server.start()).result(timeout=5)
        return running

    yield start
    for running in started:
        running._shut_down()
