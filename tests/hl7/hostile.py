"""Helpers for the hostile-input tests: an in-memory stand-in for the intake, the MLLP
handler's answer to one frame, and what a well-formed ACK is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import strategies as st

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.er7 import Er7Message
from adapters.hl7.mllp import Peer
from adapters.hl7.synthetic import SyntheticEd
from referral_gateway.storage.inbox import Arrival, Stored
from tests.hl7 import messages

NOW = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)
PEER = Peer("127.0.0.1", 40000, tls=False)
ACK_CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}
MLLP_BLOCKS = (b"\x0b", b"\x1c")
SAMPLES: list[bytes] = [m.encode("utf-8") for m in SyntheticEd(seed=11, start=NOW).stream(12)] + [
    m if isinstance(m, bytes) else m.encode("utf-8")
    for m in (  # senders' shapes: versions, separators, Z-segments, batches, charsets
        messages.V23_A04,
        messages.CUSTOM_SEPARATORS,
        messages.A01_WITH_Z_SEGMENTS,
        messages.BATCH_FILE,
        messages.ENHANCED_ACK_A01,
        messages.A40_MERGE,
        messages.ORU_RESULT,
        messages.LATIN1_ZOE_BYTES,
        messages.UNDECLARED_CP1252_BYTES,
    )
]


class RecordingIntake:
    """Stands in for the IntakeWriter: every arrival is stored, in memory."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []

    async def store_async(self, arrival: Arrival) -> Stored:
        self.arrivals.append(arrival)
        return Stored(message_id=len(self.arrivals), duplicate=False)


def answer(frame: bytes) -> tuple[list[bytes], list[Arrival]]:
    """What the MLLP handler sends back for one frame, and what it stored."""
    intake = RecordingIntake()
    handler = Hl7Intake(intake, lambda: NOW)  # type: ignore[arg-type]
    replies = asyncio.run(handler(frame, PEER))
    return list(replies), intake.arrivals


def assert_well_formed_ack(reply: bytes) -> Er7Message:
    assert not any(block in reply for block in MLLP_BLOCKS), "an ACK must not break framing"
    text = reply.decode("utf-8")
    ack = Er7Message(text)
    assert ack.segment_names[:2] == ("MSH", "MSA")
    assert ack.header.message_type == "ACK"
    assert ack.get("MSA", 1) in ACK_CODES
    return ack


# -- mutations of synthetic messages --------------------------------------------------------
def _truncate(message: bytes, data: st.DataObject) -> bytes:
    return message[: data.draw(st.integers(0, len(message)))]


def _swap_separator(message: bytes, data: st.DataObject) -> bytes:
    old = data.draw(st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r"]))
    new = data.draw(st.sampled_from([b"", b"|", b"^", b"#", b"\n", b"\r\n", b" ", b"\x00", b"A"]))
    return message.replace(old, new)


def _rewrite_msh2(message: bytes, data: st.DataObject) -> bytes:
    chars = data.draw(st.binary(min_size=0, max_size=7))
    return message.replace(b"^~\\&", chars, 1)


def _huge_field(message: bytes, data: st.DataObject) -> bytes:
    at = data.draw(st.integers(0, len(message)))
    filler = data.draw(st.sampled_from([b"x", b"^", b"~", b"\\", b"\\X", "é".encode()]))
    return message[:at] + filler * data.draw(st.integers(1_000, 200_000)) + message[at:]


def _bad_encoding(message: bytes, data: st.DataObject) -> bytes:
    text = message.decode("utf-8", "replace")
    how = data.draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "bom", "declared", "raw"]))
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "utf-16-be":
        return text.encode("utf-16-be")
    if how == "latin-1":
        return text.replace("Example", "Exämple").encode("latin-1", "replace")
    if how == "bom":
        return b"\xef\xbb\xbf" + message
    if how == "declared":  # MSH-18 names a character set the bytes are not in
        charset = data.draw(st.sampled_from([b"8859/1", b"UNICODE UTF-8", b"GB 18030", b"??"]))
        header, _, rest = message.partition(b"\r")
        return header + b"||||||" + charset + b"\r" + rest.replace(b"Street", b"Str\xff\xfet")
    at = data.draw(st.integers(0, len(message)))
    return message[:at] + data.draw(st.binary(min_size=1, max_size=8)) + message[at:]


def _flip_bytes(message: bytes, data: st.DataObject) -> bytes:
    out = bytearray(message)
    for _ in range(data.draw(st.integers(1, 8))):
        if not out:
            break
        out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
    return bytes(out)


def _drop_segments(message: bytes, data: st.DataObject) -> bytes:
    segments = message.split(b"\r")
    kept = data.draw(st.lists(st.sampled_from(segments), max_size=len(segments) + 2))
    return b"\r".join(kept)


MUTATIONS = [
    _truncate,
    _swap_separator,
    _rewrite_msh2,
    _huge_field,
    _bad_encoding,
    _flip_bytes,
    _drop_segments,
]


def without_mllp_blocks(data: bytes) -> bytes:
    """The framer never hands on a start or end block inside a frame."""
    for block in MLLP_BLOCKS:
        data = data.replace(block, b"")
    return data


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A synthetic message put through one to three mutations."""
    message = draw(st.sampled_from(SAMPLES))
    data = draw(st.data())
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        message = mutate(message, data)
    return message
