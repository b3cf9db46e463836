"""A failing handler costs one connection and no reply; logs never carry message content."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from hl7.client import MLLPClient

from adapters.hl7.mllp import MllpLimits, Peer

from .fakes import (
    SYNTHETIC_NAME,
    SYNTHETIC_NHS_NUMBER,
    AcceptingHandler,
    OversizeRejecter,
    acknowledged_id,
    adt_a04,
    connect,
    control_id_of,
    framed,
    read_replies,
    read_until_closed,
)


class ExplodingHandler(AcceptingHandler):
    """Raises on control id BOOM with patient details in the exception text, as a careless
    parser might; accepts everything else."""

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        if control_id_of(frame).startswith(b"BOOM"):
            raise ValueError("cannot read PID: TESTPATIENT^ALEX 9990000018")
        return await super().__call__(frame, peer)


def test_handler_exception_closes_the_connection_without_a_reply(running_server, caplog):
    caplog.set_level(logging.DEBUG, logger="adapters.hl7.mllp")
    handler = ExplodingHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("FINE1")))
        assert [acknowledged_id(r) for r in read_replies(sock, 1)] == [b"FINE1"]
        # The frame after BOOM1 on the same connection is never handled.
        sock.sendall(framed(adt_a04("BOOM1")) + framed(adt_a04("NEXT1")))
        assert read_until_closed(sock) == b""

    assert handler.control_ids == [b"FINE1"]
    assert server.stats.handler_failures == 1
    assert "ValueError" in caplog.text
    assert "TESTPATIENT" not in caplog.text
    assert "9990000018" not in caplog.text


def test_server_keeps_serving_after_a_handler_exception(running_server):
    handler = ExplodingHandler()
    server = running_server(handler)

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("BOOM2")))
        assert read_until_closed(sock) == b""
    with MLLPClient("127.0.0.1", server.port) as client:
        assert b"MSA|AA|AGAIN1" in client.send_message(adt_a04("AGAIN1"))


class BadReplyHandler(AcceptingHandler):
    """Answers with a reply carrying an end block byte, which would corrupt the framing."""

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        await super().__call__(frame, peer)
        return [b"MSH|^~\\&|GATEWAY\x1c|YOUTH"]


def test_reply_containing_a_block_marker_is_not_sent_and_the_connection_closes(running_server):
    server = running_server(BadReplyHandler())

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("MARK1")))
        assert read_until_closed(sock) == b""

    assert server.stats.handler_failures == 1


class SingleBytesHandler(AcceptingHandler):
    """Returns one bytes object where a sequence of replies is promised."""

    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        (reply,) = await super().__call__(frame, peer)
        return reply


def test_handler_returning_bare_bytes_instead_of_a_sequence_gets_no_reply_written(
    running_server,
):
    server = running_server(SingleBytesHandler())

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("BARE2")))
        assert read_until_closed(sock) == b""

    assert server.stats.replies_sent == 0


def test_no_log_line_carries_message_content_across_a_troubled_session(running_server, caplog):
    # Accepted, junk, oversize, abandoned frame, failing handler, cut-off frame: every path
    # that logs, with synthetic patient details in every frame.
    caplog.set_level(logging.DEBUG, logger="adapters.hl7.mllp")
    handler = ExplodingHandler()
    server = running_server(
        handler, limits=MllpLimits(max_frame_bytes=2048), on_oversize=OversizeRejecter()
    )

    with connect(server.port) as sock:
        sock.sendall(b"junk MSH|" + framed(adt_a04("LOG1")))
        sock.sendall(framed(adt_a04("LOG2", padding=4096)))
        sock.sendall(b"\x0b" + adt_a04("LOG3") + framed(adt_a04("LOG4")))
        assert [acknowledged_id(r) for r in read_replies(sock, 3)] == [b"LOG1", b"LOG2", b"LOG4"]
        sock.sendall(framed(adt_a04("BOOM3")))
        assert read_until_closed(sock) == b""
    with connect(server.port) as sock:
        sock.sendall(b"\x0b" + adt_a04("LOG5"))
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock) == b""
    server.stop()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" not in logged  # the session really ran
    assert "abandoned 1 frame" in logged
    assert "ended inside a frame" in logged
    for content in (SYNTHETIC_NAME, SYNTHETIC_NHS_NUMBER, b"MSH|", b"LOG1", b"BOOM3"):
        assert content.decode() not in logged
