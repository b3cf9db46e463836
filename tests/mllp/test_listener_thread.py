"""The listener on a thread and loop of its own (`adapters.hl7.listener_thread`): it answers
while the caller's event loop is held, says why it could not bind, and stops cleanly."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from adapters.hl7.listener_thread import MllpListenerThread
from adapters.hl7.mllp import MllpServer, Peer
from tests.mllp.fakes import ack, acknowledged_id, adt_a04, framed, read_replies


async def acknowledge(frame: bytes, peer: Peer) -> list[bytes]:
    return [ack(frame)]


def test_acks_are_written_while_the_starting_event_loop_is_held():
    closed: list[bool] = []

    async def on_stop() -> None:
        closed.append(True)

    async def main() -> float:
        listener = MllpListenerThread(MllpServer(acknowledge, port=0), on_stop=on_stop).start()
        try:
            loop = asyncio.get_running_loop()
            answered = loop.run_in_executor(None, send_one, listener.port)
            time.sleep(1.0)  # this loop is held, as a long FHIR commit would hold it
            return await answered
        finally:
            await listener.stop_async()

    seconds = asyncio.run(main())
    assert seconds < 0.5
    assert closed == [True]


def send_one(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        t0 = time.perf_counter()
        conn.sendall(framed(adt_a04("HELD1")))
        (reply,) = read_replies(conn, 1)
        assert acknowledged_id(reply) == b"HELD1"
        return time.perf_counter() - t0


def test_a_port_already_taken_is_reported_by_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            MllpListenerThread(MllpServer(acknowledge, port=port)).start()
