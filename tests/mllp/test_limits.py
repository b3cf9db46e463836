"""Connection cap, idle timeout and frame size limit, against a live listener."""

from __future__ import annotations

import logging
import socket
import time

from hl7.client import MLLPClient

from adapters.hl7.mllp import MllpLimits

from ..waiting import wait_for
from .fakes import (
    AcceptingHandler,
    OversizeRejecter,
    ack,
    adt_a04,
    connect,
    framed,
    read_replies,
    read_until_closed,
)


def test_connection_beyond_the_cap_is_closed_at_once_and_a_freed_slot_is_reused(
    running_server, caplog
):
    caplog.set_level(logging.WARNING, logger="adapters.hl7.mllp")
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(max_connections=2))
    first = MLLPClient("127.0.0.1", server.port)
    second = MLLPClient("127.0.0.1", server.port)
    try:
        assert b"MSA|AA|CAP1" in first.send_message(adt_a04("CAP1"))
        assert b"MSA|AA|CAP2" in second.send_message(adt_a04("CAP2"))

        with connect(server.port) as third:
            third.sendall(framed(adt_a04("CAP3")))
            assert read_until_closed(third) == b""
        assert server.stats.refused_connections == 1
        assert "max_connections=2" in caplog.text

        first.close()
        wait_for(lambda: server.stats.open_connections == 1)
        with MLLPClient("127.0.0.1", server.port) as fourth:
            assert b"MSA|AA|CAP4" in fourth.send_message(adt_a04("CAP4"))
    finally:
        first.close()
        second.close()

    assert handler.control_ids == [b"CAP1", b"CAP2", b"CAP4"]


def test_quiet_connection_is_closed_after_the_idle_timeout(running_server):
    server = running_server(AcceptingHandler(), limits=MllpLimits(idle_timeout_s=0.2))

    with connect(server.port) as sock:
        opened = time.monotonic()
        assert read_until_closed(sock) == b""
        waited = time.monotonic() - opened

    assert 0.15 <= waited < 2
    assert server.stats.idle_timeouts == 1


def test_connection_that_keeps_talking_outlives_the_idle_timeout(running_server):
    # Five messages 0.1 s apart: 0.5 s in all, over twice the 0.2 s idle timeout.
    server = running_server(AcceptingHandler(), limits=MllpLimits(idle_timeout_s=0.2))

    with MLLPClient("127.0.0.1", server.port) as client:
        for i in range(5):
            time.sleep(0.1)
            assert f"MSA|AA|TALK{i}".encode() in client.send_message(adt_a04(f"TALK{i}"))

    assert server.stats.accepted_connections == 1
    assert server.stats.idle_timeouts == 0


def test_oversized_frame_is_answered_by_on_oversize_and_the_connection_stays_usable(
    running_server,
):
    # A 64 KiB attachment-like NTE against a 4 KiB limit, then an ordinary message.
    handler = AcceptingHandler()
    rejecter = OversizeRejecter()
    server = running_server(
        handler,
        limits=MllpLimits(max_frame_bytes=4096, read_chunk=1024),
        on_oversize=rejecter,
    )
    big = adt_a04("HUGE1", padding=64 * 1024)
    small = adt_a04("AFTER1")

    with connect(server.port) as sock:
        sock.sendall(framed(big))
        assert read_replies(sock, 1) == [ack(big, b"AR")]
        sock.sendall(framed(small))
        assert read_replies(sock, 1) == [ack(small)]

    assert handler.frames == [small]
    assert rejecter.heads == [big[: len(rejecter.heads[0])]]
    assert 0 < len(rejecter.heads[0]) <= 4096
    assert server.stats.oversize_frames == 1


def test_oversized_frame_without_an_oversize_reply_closes_the_connection(running_server):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(max_frame_bytes=1024))

    with connect(server.port) as sock:
        sock.sendall(framed(adt_a04("HUGE2", padding=4096)))
        rest = read_until_closed(sock)

    assert rest == b""
    assert handler.frames == []
    assert server.stats.oversize_frames == 1


def test_bytes_sent_after_the_cap_refusal_never_reach_the_handler(running_server):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(max_connections=1))
    with MLLPClient("127.0.0.1", server.port) as holder:
        holder.send_message(adt_a04("HOLD1"))
        refused = socket.create_connection(("127.0.0.1", server.port), timeout=3)
        with refused:
            refused.sendall(framed(adt_a04("LATE1")))
            assert read_until_closed(refused) == b""

    assert handler.control_ids == [b"HOLD1"]
