"""Graceful stop: in-flight work finishes and is answered, idle connections close, no new ones."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from adapters.hl7.mllp import MllpServer, Peer

from .fakes import (
    AcceptingHandler,
    acknowledged_id,
    adt_a04,
    connect,
    control_id_of,
    framed,
    read_replies,
    read_until_closed,
)


class HeldHandler(AcceptingHandler):
    """Holds frames whose control id starts with HOLD until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release: asyncio.Event | None = None

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        if control_id_of(frame).startswith(b"HOLD"):
            self.release = asyncio.Event()
            self.entered.set()
            await self.release.wait()
        return await super().__call__(frame, peer)


def test_stop_lets_an_in_flight_handler_finish_and_write_its_reply(running_server):
    handler = HeldHandler()
    server = running_server(handler)

    with connect(server.port) as idle, connect(server.port) as busy:
        idle.sendall(framed(adt_a04("IDLE1")))
        assert [acknowledged_id(r) for r in read_replies(idle, 1)] == [b"IDLE1"]
        # HOLD1 is in flight; PIPE1 waits behind it on the same connection.
        busy.sendall(framed(adt_a04("HOLD1")) + framed(adt_a04("PIPE1")))
        assert handler.entered.wait(timeout=3)

        stopping = server.submit(server.server.stop())

        assert read_until_closed(idle) == b""  # the idle connection goes at once
        with pytest.raises(ConnectionRefusedError):
            connect(server.port).close()  # and nobody new gets in
        assert not stopping.done()

        server.loop.call_soon_threadsafe(handler.release.set)
        stopping.result(timeout=3)
        assert [acknowledged_id(r) for r in read_replies(busy, 1)] == [b"HOLD1"]
        assert read_until_closed(busy) == b""

    assert handler.control_ids == [b"IDLE1", b"HOLD1"]  # PIPE1 unanswered: its sender resends


def test_stop_with_a_timeout_abandons_a_handler_that_never_finishes(running_server):
    handler = HeldHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("HOLD2")))
        assert handler.entered.wait(timeout=3)
        server.stop(timeout=0.2)
        assert read_until_closed(sock) == b""

    assert handler.frames == []


def test_serve_forever_returns_once_stop_is_called():
    async def scenario() -> None:
        server = MllpServer(AcceptingHandler(), port=0)
        serving = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0.05)
        assert server.port > 0
        await server.stop()
        await asyncio.wait_for(serving, timeout=2)

    asyncio.run(scenario())
