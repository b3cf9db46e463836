"""The outbound link that carries application ACKs to a sender's return address."""

from __future__ import annotations

import asyncio

from adapters.hl7.return_link import ReturnLink

from .fakes import framed


async def listener(received: list[bytes], *, close_after_each: bool) -> asyncio.Server:
    """A real MLLP listener on a free port that answers every frame (as some engines do,
    even for ACKs) and, if asked, hangs up after each one."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.readuntil(b"\x1c\r"):
                received.append(data)
                writer.write(framed(b"MSA|AA|whatever"))
                await writer.drain()
                if close_after_each:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_acks_leave_in_order_on_one_connection_and_the_replies_are_ignored():
    async def scenario() -> None:
        received: list[bytes] = []
        server = await listener(received, close_after_each=False)
        link = ReturnLink("127.0.0.1", server.sockets[0].getsockname()[1])
        for i in range(5):
            link.send(f"MSA|AA|ID{i}".encode())
        await wait_for(lambda: len(received) == 5)
        await link.close()
        server.close()
        assert received == [framed(f"MSA|AA|ID{i}".encode()) for i in range(5)]
        assert (link.stats.sent, link.stats.failures, link.waiting) == (5, 0, 0)

    asyncio.run(scenario())


def test_a_return_address_that_hangs_up_after_each_ack_still_gets_every_one():
    async def scenario() -> None:
        received: list[bytes] = []
        server = await listener(received, close_after_each=True)
        link = ReturnLink("127.0.0.1", server.sockets[0].getsockname()[1], max_backoff_s=0.2)
        for i in range(3):
            link.send(f"MSA|AA|HUP{i}".encode())
            await wait_for(lambda i=i: len(received) == i + 1)
            await asyncio.sleep(0.1)  # the far end has hung up by now
        await link.close()
        server.close()
        assert received == [framed(f"MSA|AA|HUP{i}".encode()) for i in range(3)]

    asyncio.run(scenario())


def test_a_full_queue_drops_its_oldest_ack_and_counts_it():
    async def scenario() -> None:
        link = ReturnLink("127.0.0.1", 9, max_queue=2, connect_timeout_s=0.1)  # nobody there
        for i in range(3):
            link.send(f"MSA|AA|Q{i}".encode())
        await link.close()
        assert link.stats.dropped == 1
        assert link.waiting == 2

    asyncio.run(scenario())
