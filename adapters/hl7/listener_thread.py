"""The MLLP listener on a thread and an event loop of its own.

`serve` runs this in the listener's own process (`referral_gateway.entrypoints.mllp_process`),
whose main thread meanwhile passes on the pipeline's states from the serve process: the
listener's loop does nothing but read frames, wait for each message's inbox commit (the
intake's writer thread) and write the replies. The store-then-acknowledge rule is the
handler's: it answers only after the intake has committed the message.

`start` returns once the listener accepts connections (or raises what stopped it binding);
`stop` lets handlers inside a frame finish and write their replies, then runs `on_stop` (the
intake's close: its tasks live on this loop) and ends the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from adapters.hl7.mllp import MllpServer

_START_TIMEOUT_S = 30.0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # part of uvicorn[standard], as for serve's main loop
    except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class MllpListenerThread:
    """Runs `server` on a loop of its own, in a daemon thread named `mllp-listener`."""

    def __init__(
        self,
        server: MllpServer,
        *,
        on_stop: Callable[[], Awaitable[None]] | None = None,
        stop_timeout_s: float | None = None,
    ) -> None:
        self.server = server
        self._on_stop = on_stop
        self._stop_timeout_s = stop_timeout_s
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="mllp-listener", daemon=True)
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def serving(self) -> bool:
        return self._thread.is_alive() and self.server.serving

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> MllpListenerThread:
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S):
            raise TimeoutError("the MLLP listener did not start")
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        stop = self._stop_requested
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join()

    async def stop_async(self) -> None:
        """`stop` from an event loop (the main one), without blocking it."""
        await asyncio.to_thread(self.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _main(self) -> None:
        self._stop_requested = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # the caller of start() raises it
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self.server.stop(timeout=self._stop_timeout_s)
            if self._on_stop is not None:
                await self._on_stop()
