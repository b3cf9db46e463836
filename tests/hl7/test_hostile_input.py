"""Hostile input for the ER7 reader and the ACK path (Hypothesis): random bytes, synthetic
messages mutated (truncated, separators swapped, huge fields, bad encodings, bytes flipped).
Whatever arrives, the MLLP handler answers every message with a well-formed ACK and raises
nothing, and the pipeline's decoder either maps a stored message or rejects it as such.

The handler runs with a recording intake (no database): storage is not what is tested here.
Runs are bounded and derandomized by the suite's Hypothesis profile (tests/conftest.py);
RG_HYPOTHESIS_PROFILE=explore searches longer.
"""

from __future__ import annotations

import contextlib

from hypothesis import example, given
from hypothesis import strategies as st

from adapters.hl7.channel import decode_stored
from adapters.hl7.er7 import Er7Message
from adapters.hl7.errors import Hl7Error
from referral_gateway.services.errors import MessageRejected
from referral_gateway.storage.inbox import PendingMessage
from tests.hl7.hostile import answer, assert_well_formed_ack, mutated_messages, without_mllp_blocks


def assert_answered(frame: bytes) -> None:
    replies, arrivals = answer(frame)
    assert arrivals, "every frame is stored (or kept in the error store)"
    for reply in replies:
        assert_well_formed_ack(reply)
    for arrival in arrivals:
        if arrival.state == "error":
            continue
        pending = PendingMessage(
            id=1,
            channel=arrival.channel,
            sender=arrival.sender,
            site=arrival.site,
            message_type=arrival.message_type,
            payload=arrival.payload,
            received_at=arrival.received_at,
        )
        with contextlib.suppress(MessageRejected):  # kept in the error store: handled
            decode_stored(pending)


# -- properties ----------------------------------------------------------------------------
@given(st.binary(max_size=3_000))
@example(b"")
@example(b"MSH")
@example(b"MSH|")
@example(b"MSH|^~")
@example(b"MSH|^~\\&")
@example(b"MSH|^~\\\\&|EDIS|RXX01|RG|RG|20260314||ADT^A01|C1|P|2.4")
@example(b"FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1")
@example(b"\xff\xfeM\x00S\x00H\x00|\x00")
def test_random_bytes_get_a_well_formed_answer(frame):
    assert_answered(without_mllp_blocks(frame))


@given(mutated_messages())
def test_mutated_messages_get_a_well_formed_answer(message):
    assert_answered(without_mllp_blocks(message))


@given(mutated_messages())
def test_a_readable_header_is_echoed_in_msa_2(message):
    replies, arrivals = answer(without_mllp_blocks(message))
    readable = [a for a in arrivals if a.state != "error"]
    acks = [assert_well_formed_ack(r) for r in replies]
    if len(acks) == len(arrivals):  # no MSH-15 NE in play: one ACK per message, in order
        for arrival, ack in zip(arrivals, acks, strict=True):
            if arrival in readable and not arrival.message_key.startswith("sha256:"):
                assert ack.segment("MSA").raw(2) == arrival.message_key


@given(st.text(max_size=2_000))
def test_the_reader_raises_only_its_own_errors_on_any_text(text):
    try:
        message = Er7Message(text)
    except Hl7Error:
        return
    _ = message.header, message.segment_names
    for segment in message:
        for field in range(len(segment)):
            segment.get(field)
