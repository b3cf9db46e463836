"""Real clients talking to a real listener: python-hl7's mllp_send and MLLPClient, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hl7.client import MLLPClient

from adapters.hl7.mllp import MllpLimits, Peer

from ..waiting import wait_for
from .fakes import (
    AcceptingHandler,
    ack,
    acknowledged_id,
    adt_a04,
    connect,
    framed,
    read_replies,
    read_until_closed,
)


def test_mllp_send_script_gets_an_accept_ack_for_every_message_in_a_file(running_server, tmp_path):
    # Three arrivals in one file, framed back to back as a sender's batch would be.
    messages = [adt_a04(f"FILE{i}") for i in range(3)]
    batch = tmp_path / "batch.hl7"
    batch.write_bytes(b"".join(framed(m) for m in messages))
    handler = AcceptingHandler()
    server = running_server(handler)

    # The console script installed beside this interpreter: never one found on PATH.
    mllp_send = Path(sys.executable).with_name("mllp_send")
    assert mllp_send.exists(), "python-hl7's mllp_send is not installed in this environment"
    result = subprocess.run(
        [str(mllp_send), "--file", str(batch), "--port", str(server.port), "127.0.0.1"],
        capture_output=True,
        timeout=20,
        check=True,
    )

    # mllp_send prints each raw (still framed) reply followed by a newline.
    printed = result.stdout.split(b"\n")
    assert printed[:3] == [framed(ack(m.rstrip(b"\r"))) for m in messages]
    for i in range(3):
        assert f"MSA|AA|FILE{i}".encode() in printed[i]
    assert handler.control_ids == [b"FILE0", b"FILE1", b"FILE2"]
    assert server.stats.accepted_connections == 1


def test_mllp_client_sends_many_messages_on_one_connection_and_gets_each_ack(running_server):
    handler = AcceptingHandler()
    server = running_server(handler)

    with MLLPClient("127.0.0.1", server.port) as client:
        replies = [client.send_message(adt_a04(f"KEEP{i}")) for i in range(5)]

    assert replies == [framed(ack(adt_a04(f"KEEP{i}"))) for i in range(5)]
    assert all(f"MSA|AA|KEEP{i}".encode() in r for i, r in enumerate(replies))
    assert len({peer.port for peer in handler.peers}) == 1
    assert handler.peers[0] == Peer(host="127.0.0.1", port=handler.peers[0].port, tls=False)
    assert server.stats.accepted_connections == 1


class UnevenHandler(AcceptingHandler):
    """Slowest on the first frame, so frames handled side by side would answer out of order.
    Notes how many replies the server had written when each frame's handling began."""

    def __init__(self) -> None:
        super().__init__()
        self.server = None
        self.replies_written_at_start: list[int] = []

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        self.replies_written_at_start.append(self.server.stats.replies_sent)
        await asyncio.sleep(0.05 if not self.frames else 0)
        return await super().__call__(frame, peer)


def test_pipelined_frames_are_handled_and_answered_in_the_order_sent(running_server):
    handler = UnevenHandler()
    server = running_server(handler)
    handler.server = server.server
    messages = [adt_a04(f"ORDER{i}") for i in range(5)]

    with connect(server.port) as sock:
        sock.sendall(b"".join(framed(m) for m in messages))
        replies = read_replies(sock, 5)

    assert [acknowledged_id(r) for r in replies] == [f"ORDER{i}".encode() for i in range(5)]
    assert handler.frames == messages
    # Reply i was on the wire before frame i+1's handler ran.
    assert handler.replies_written_at_start == [0, 1, 2, 3, 4]


class GatheringHandler(AcceptingHandler):
    """Holds each frame until `expected` frames are being handled at once (or 2 s pass)."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.in_flight = 0
        self.most_in_flight = 0
        self.all_here: asyncio.Event | None = None

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        if self.all_here is None:
            self.all_here = asyncio.Event()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight == self.expected:
            self.all_here.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_here.wait(), timeout=2)
        self.in_flight -= 1
        return await super().__call__(frame, peer)


def test_several_connections_are_served_at_the_same_time(running_server):
    handler = GatheringHandler(expected=3)
    server = running_server(handler)

    def send(control_id: str) -> bytes:
        with MLLPClient("127.0.0.1", server.port) as client:
            return client.send_message(adt_a04(control_id))

    with ThreadPoolExecutor(max_workers=3) as pool:
        replies = list(pool.map(send, ["SIDE1", "SIDE2", "SIDE3"]))

    assert handler.most_in_flight == 3
    assert [f"MSA|AA|SIDE{i}".encode() in r for i, r in enumerate(replies, 1)] == [True] * 3
    assert server.stats.accepted_connections == 3


def test_frame_arriving_one_byte_per_read_is_reassembled(running_server):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(read_chunk=1))
    message = adt_a04("DRIP1")

    with connect(server.port) as sock:
        for byte in framed(message):
            sock.send(bytes([byte]))
        replies = read_replies(sock, 1)

    assert replies == [ack(message)]
    assert handler.frames == [message]


def test_two_frames_in_one_packet_get_two_replies(running_server):
    handler = AcceptingHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.send(framed(adt_a04("PAIR1")) + framed(adt_a04("PAIR2")))
        replies = read_replies(sock, 2)

    assert [acknowledged_id(r) for r in replies] == [b"PAIR1", b"PAIR2"]
    assert all(b"MSA|AA|PAIR" in r for r in replies)


def test_junk_between_frames_is_ignored(running_server):
    # Stray line endings and a banner-like string around and between the frames.
    handler = AcceptingHandler()
    server = running_server(handler)
    first, second = adt_a04("JUNK1"), adt_a04("JUNK2")

    with connect(server.port) as sock:
        sock.sendall(b"\r\n" + framed(first) + b"\n\nhello\r\n" + framed(second) + b"\n")
        replies = read_replies(sock, 2)

    assert replies == [ack(first), ack(second)]
    assert handler.frames == [first, second]


def test_bare_end_block_at_end_of_stream_still_gets_an_answer(running_server):
    # A sender that omits the final CR and half-closes its side.
    handler = AcceptingHandler()
    server = running_server(handler)
    message = adt_a04("BARE1")

    with connect(server.port) as sock:
        sock.sendall(b"\x0b" + message + b"\x1c")
        sock.shutdown(socket.SHUT_WR)
        rest = read_until_closed(sock)

    assert rest == framed(ack(message))


def test_frame_cut_off_by_the_end_of_the_stream_is_not_handled(running_server):
    handler = AcceptingHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.sendall(b"\x0b" + adt_a04("CUT1"))
        sock.shutdown(socket.SHUT_WR)
        rest = read_until_closed(sock)

    assert rest == b""
    assert handler.frames == []


NOTE = b"MSH|^~\\&|GATEWAY|YOUTH|||||ZZZ|NOTE|P|2.4"


class SilentThenChattyHandler(AcceptingHandler):
    """No reply to the first frame, an ACK and a NOTE to every later one."""

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        first = not self.frames
        replies = await super().__call__(frame, peer)
        return [] if first else [*replies, NOTE]


def test_handler_may_answer_with_no_reply_or_several(running_server):
    handler = SilentThenChattyHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("NONE1")) + framed(adt_a04("TWO1")))
        replies = read_replies(sock, 2)

    assert replies == [ack(adt_a04("TWO1")), NOTE]
    wait_for(lambda: server.stats.replies_sent == 2)
