"""Synthetic messages, a recording handler and raw-socket helpers for the MLLP listener tests.

Every message here is invented: the patient is TESTPATIENT^ALEX with an NHS number from the
999 test range. The listener never reads content, so only MSH-10 (the control id) matters to
the fake handler; the other segments are there so frames look like what an ED system sends.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence

from adapters.hl7.mllp import Peer

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
SYNTHETIC_NAME = b"TESTPATIENT"
SYNTHETIC_NHS_NUMBER = b"9990000018"


def adt_a04(control_id: str, *, padding: int = 0) -> bytes:
    """A synthetic ADT^A04 ED arrival whose MSH-10 is `control_id`.

    `padding` adds an NTE segment of that many characters, to make frames of a chosen size.
    """
    segments = [
        f"MSH|^~\\&|EDIS|RXX01|GATEWAY|YOUTH|20240301101500||ADT^A04^ADT_A01|{control_id}|P|2.4",
        "EVN|A04|20240301101500",
        "PID|1||9990000018^^^NHS^NH||TESTPATIENT^ALEX||20080115|M",
        "PV1|1|E|ED^MAJ^BAY3||||||||||||||||V0001",
    ]
    if padding:
        segments.append("NTE|1||" + "x" * padding)
    return ("\r".join(segments) + "\r").encode()


def framed(message: bytes) -> bytes:
    """The test's own MLLP wrapping, independent of the module under test."""
    return SB + message + EB + CR


def control_id_of(message: bytes) -> bytes:
    """MSH-10, found the crude way: tenth '|'-separated field of the first segment."""
    return message.split(CR, 1)[0].split(b"|")[9]


def acknowledged_id(reply: bytes) -> bytes:
    """MSA-2 of an ACK: the control id of the message it answers."""
    msa = next(seg for seg in reply.split(CR) if seg.startswith(b"MSA|"))
    return msa.split(b"|")[2]


def ack(message: bytes, code: bytes = b"AA") -> bytes:
    """A bare-bones ACK quoting the message's control id in MSA-2."""
    control_id = control_id_of(message)
    return (
        b"MSH|^~\\&|GATEWAY|YOUTH|EDIS|RXX01|20240301101501||ACK|ACK"
        + control_id
        + b"|P|2.4\rMSA|"
        + code
        + b"|"
        + control_id
    )


class AcceptingHandler:
    """Records every frame with its peer and answers each with an AA ACK."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.peers: list[Peer] = []

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        self.frames.append(frame)
        self.peers.append(peer)
        return [ack(frame)]

    @property
    def control_ids(self) -> list[bytes]:
        return [control_id_of(f) for f in self.frames]


class OversizeRejecter:
    """An `on_oversize` callback: answers AR quoting MSH-10 from the frame's first bytes."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    def __call__(self, head: bytes) -> bytes:
        self.heads.append(head)
        return ack(head, b"AR")


def connect(port: int, *, timeout: float = 3.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_FRAMED = re.compile(rb"\x0b([^\x0b\x1c]*)\x1c\r")


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    """Read until `count` framed replies have arrived; return them unframed, in order."""
    data = b""
    while data.count(EB + CR) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data.count(EB + CR)} replies")
        data += chunk
    replies = _FRAMED.findall(data)
    assert b"".join(framed(r) for r in replies) == data, "bytes outside reply frames"
    return replies


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout applies).

    A reset counts as closed: a server closing with our bytes still unread makes the kernel
    answer with RST instead of FIN.
    """
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data
