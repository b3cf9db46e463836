"""The framing rules, on the pure decoder: no sockets, every split of the stream."""

from __future__ import annotations

import itertools

from adapters.hl7.mllp import Frame, MllpFrameDecoder, OversizeFrame

from .fakes import adt_a04, framed


def decode_in_pieces(stream: bytes, cut_points: list[int], max_frame_bytes: int = 10_000):
    decoder = MllpFrameDecoder(max_frame_bytes)
    events = []
    bounds = [0, *cut_points, len(stream)]
    for start, end in itertools.pairwise(bounds):
        events.extend(decoder.feed(stream[start:end]))
    return decoder, events


def test_two_frames_with_junk_between_decode_the_same_however_the_stream_is_cut():
    # Two messages with a stray CRLF before, newlines and text between, CR after: what a
    # sloppy sender's stream looks like.
    first, second = adt_a04("CUT1"), adt_a04("CUT2")
    stream = b"\r\n" + framed(first) + b"\n\nnoise" + framed(second) + b"\r\n"
    for cut in range(1, len(stream)):
        _, events = decode_in_pieces(stream, [cut])
        assert events == [Frame(first), Frame(second)], f"cut at {cut}"
    _, one_byte_at_a_time = decode_in_pieces(stream, list(range(1, len(stream))))
    assert one_byte_at_a_time == [Frame(first), Frame(second)]


def test_junk_outside_frames_is_counted_but_whitespace_is_not():
    # "noise" (5 bytes) is junk; CR, LF and the CR that follows each end block are not.
    stream = b"\r\n" + framed(b"A") + b"\n\nnoise" + framed(b"B") + b"\r\n"
    decoder, events = decode_in_pieces(stream, [])
    assert events == [Frame(b"A"), Frame(b"B")]
    assert decoder.junk_bytes == 5


def test_end_block_without_carriage_return_ends_a_frame():
    # A sender that writes 0x1C alone, even straight before the next start block.
    decoder, events = decode_in_pieces(b"\x0bfirst\x1c\x0bsecond\x1c", [])
    assert events == [Frame(b"first"), Frame(b"second")]
    assert decoder.pending_bytes == 0


def test_frame_is_complete_at_end_block_before_its_carriage_return_arrives():
    decoder = MllpFrameDecoder(100)
    assert decoder.feed(b"\x0bmessage\x1c") == [Frame(b"message")]
    assert decoder.feed(b"\r") == []


def test_start_block_inside_a_frame_abandons_the_partial_frame():
    # The sender gave up half way through "half" and started the message again.
    decoder, events = decode_in_pieces(b"\x0bhalf\x0bwhole\x1c\r", [])
    assert events == [Frame(b"whole")]
    assert decoder.abandoned_frames == 1


def test_unfinished_frame_yields_nothing_and_reports_its_pending_bytes():
    decoder, events = decode_in_pieces(b"\x0bno end block", [5])
    assert events == []
    assert decoder.pending_bytes == len(b"no end block")


def test_empty_frame_is_passed_on():
    _, events = decode_in_pieces(b"\x0b\x1c\r", [])
    assert events == [Frame(b"")]


def test_frame_of_exactly_the_limit_is_accepted_and_one_byte_more_is_oversize():
    _, at_limit = decode_in_pieces(framed(b"x" * 64), [], max_frame_bytes=64)
    _, over_limit = decode_in_pieces(framed(b"x" * 65), [], max_frame_bytes=64)
    assert at_limit == [Frame(b"x" * 64)]
    assert over_limit == [OversizeFrame(head=b"x" * 64, size=65)]


def test_oversize_frame_keeps_only_its_head_and_the_next_frame_still_decodes():
    big = adt_a04("BIG1", padding=200_000)
    small = adt_a04("SMALL1")
    stream = framed(big) + framed(small)
    decoder = MllpFrameDecoder(4096, head_bytes=1024)
    events = []
    most_held = 0
    for start in range(0, len(stream), 1000):
        events.extend(decoder.feed(stream[start : start + 1000]))
        most_held = max(most_held, decoder.held_bytes)
    assert events == [OversizeFrame(head=big[:1024], size=len(big)), Frame(small)]
    assert most_held <= 4096


def test_head_of_an_oversize_frame_is_never_longer_than_the_limit():
    decoder = MllpFrameDecoder(10)
    assert decoder.feed(framed(b"0123456789abcdef")) == [OversizeFrame(head=b"0123456789", size=16)]
