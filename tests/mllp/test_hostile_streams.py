"""Hostile byte streams for the MLLP framer and the listener (Hypothesis): random bytes,
stray and doubled block markers, frames cut short, frames over the limit, mutated messages.

The decoder must agree with a plain statement of the framing rules however the stream is cut
into reads, and never hold more than the limit; the listener, with the real HL7 handler in
front of an in-memory intake, must answer with well-formed ACKs and stay in step: a good
frame sent after any hostile stream gets its own ACK on the same connection.
"""

from __future__ import annotations

import itertools
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.mllp import Frame, MllpFrameDecoder, MllpLimits, OversizeFrame
from tests.hl7.hostile import (
    NOW,
    RecordingIntake,
    assert_well_formed_ack,
    mutated_messages,
)

from .fakes import adt_a04, framed

SB, EB = b"\x0b", b"\x1c"
LIMIT = 3_000


def reference_frames(stream: bytes, limit: int, head_bytes: int) -> list[Frame | OversizeFrame]:
    """The framing rules, stated plainly: a frame is what lies between a start block and the
    next end block with no start block in between; over the limit, only its head is kept."""
    events: list[Frame | OversizeFrame] = []
    start: int | None = None
    for i, byte in enumerate(stream):
        if byte == SB[0]:
            start = i + 1
        elif byte == EB[0] and start is not None:
            content = stream[start:i]
            if len(content) > limit:
                events.append(
                    OversizeFrame(head=content[: min(head_bytes, limit)], size=len(content))
                )
            else:
                events.append(Frame(content))
            start = None
    return events


pieces = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([SB, EB, EB + b"\r", b"\r\n", b"\x00", SB + SB, EB + EB]),
    mutated_messages().map(framed),
    st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: framed(b"x" * n)),
)
streams = st.lists(pieces, max_size=12).map(b"".join)


@given(streams, st.lists(st.integers(0, 10_000), max_size=20))
def test_the_decoder_follows_the_framing_rules_however_the_stream_is_cut(stream, cuts):
    decoder = MllpFrameDecoder(LIMIT, head_bytes=100)
    events = []
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        events.extend(decoder.feed(stream[start:end]))
        assert decoder.held_bytes <= LIMIT
    assert events == reference_frames(stream, LIMIT, head_bytes=100)


@pytest.fixture
def hl7_listener(running_server):
    intake = RecordingIntake()
    handler = Hl7Intake(intake, lambda: NOW)  # type: ignore[arg-type]
    return running_server(
        handler,
        limits=MllpLimits(max_frame_bytes=LIMIT, idle_timeout_s=30),
        on_oversize=handler.oversize_reply,
    )


def acknowledged_id(reply: bytes) -> str:
    """MSA-2, read with the ACK's own separators (a hostile sender's may not be "|")."""
    return assert_well_formed_ack(reply).segment("MSA").raw(2)


def read_replies_until(sock: socket.socket, control_id: str) -> list[bytes]:
    buffer, replies = b"", []
    while not replies or acknowledged_id(replies[-1]) != control_id:
        chunk = sock.recv(65536)
        assert chunk, "the listener closed the connection instead of answering"
        buffer += chunk
        while EB in buffer:
            reply, buffer = buffer.split(EB, 1)
            replies.append(reply.lstrip(b"\r").removeprefix(SB))
    return replies


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(streams)
def test_the_listener_answers_a_hostile_stream_and_stays_in_step(hl7_listener, stream):
    good = adt_a04("AFTER-HOSTILE")
    with socket.create_connection(("127.0.0.1", hl7_listener.port), timeout=10) as sock:
        sock.sendall(stream + framed(good))
        replies = read_replies_until(sock, "AFTER-HOSTILE")
    for reply in replies:
        assert_well_formed_ack(reply)
    assert assert_well_formed_ack(replies[-1]).get("MSA", 1) == "AA"
