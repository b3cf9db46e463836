"""Slow, idle and crowding clients cannot lock the real feed out (real sockets throughout)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack

from adapters.hl7.mllp import MllpLimits

from ..waiting import wait_for
from .fakes import (
    SB,
    AcceptingHandler,
    ack,
    adt_a04,
    framed,
    read_replies,
    read_until_closed,
)


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to the listener on 127.0.0.1 from another loopback address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def drip(sock: socket.socket, byte: bytes, every: float, stop: threading.Event) -> None:
    """Send one byte every `every` seconds until stopped or the server closes."""
    while not stop.wait(every):
        try:
            sock.sendall(byte)
        except OSError:
            return


def test_sixty_four_drip_feeding_connections_from_one_address_leave_room_for_the_real_feed(
    running_server,
):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits())  # the defaults, as `serve` has them
    stop = threading.Event()
    with ExitStack() as stack:
        drippers = []
        for _ in range(64):
            sock = stack.enter_context(connect_from("127.0.0.1", server.port))
            sock.sendall(SB + b"M")  # a frame begun and never finished
            drippers.append(threading.Thread(target=drip, args=(sock, b"S", 0.1, stop)))
        for thread in drippers:
            thread.start()
        try:
            wait_for(
                lambda: server.stats.accepted_connections + server.stats.refused_connections == 64
            )

            with connect_from("127.0.0.2", server.port) as feed:
                for i in range(3):
                    message = adt_a04(f"REAL{i}")
                    feed.sendall(framed(message))
                    assert read_replies(feed, 1) == [ack(message)]
        finally:
            stop.set()
            for thread in drippers:
                thread.join()

    assert handler.control_ids == [b"REAL0", b"REAL1", b"REAL2"]
    assert server.stats.refused_connections == 64 - MllpLimits().max_connections_per_address


def test_a_frame_that_never_ends_is_cut_at_its_deadline_though_bytes_keep_coming(running_server):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(frame_timeout_s=0.4, idle_timeout_s=30))
    stop = threading.Event()
    with connect_from("127.0.0.1", server.port) as sock:
        sock.sendall(SB + adt_a04("NEVEREND")[:40])
        dripper = threading.Thread(target=drip, args=(sock, b"x", 0.05, stop))
        opened = time.monotonic()
        dripper.start()
        try:
            assert read_until_closed(sock) == b""
            waited = time.monotonic() - opened
        finally:
            stop.set()
            dripper.join()

    assert 0.3 <= waited < 3
    assert handler.frames == []
    assert server.stats.frame_timeouts == 1


def test_bytes_trickling_between_frames_do_not_extend_the_idle_timeout(running_server):
    handler = AcceptingHandler()
    server = running_server(handler, limits=MllpLimits(idle_timeout_s=0.4))
    stop = threading.Event()
    with connect_from("127.0.0.1", server.port) as sock:
        message = adt_a04("BEFOREIDLE")
        sock.sendall(framed(message))
        assert read_replies(sock, 1) == [ack(message)]
        dripper = threading.Thread(target=drip, args=(sock, b"\r", 0.05, stop))
        answered = time.monotonic()
        dripper.start()
        try:
            assert read_until_closed(sock) == b""
            waited = time.monotonic() - answered
        finally:
            stop.set()
            dripper.join()

    assert 0.3 <= waited < 3
    assert server.stats.idle_timeouts == 1


def test_connections_from_one_address_beyond_its_share_are_refused(running_server):
    handler = AcceptingHandler()
    server = running_server(
        handler, limits=MllpLimits(max_connections=10, max_connections_per_address=2)
    )
    with ExitStack() as stack:
        held = [stack.enter_context(connect_from("127.0.0.1", server.port)) for _ in range(2)]
        wait_for(lambda: server.stats.open_connections == 2)
        with connect_from("127.0.0.1", server.port) as third:
            third.sendall(framed(adt_a04("THIRD")))
            assert read_until_closed(third) == b""
        for i, sock in enumerate(held):
            message = adt_a04(f"HELD{i}")
            sock.sendall(framed(message))
            assert read_replies(sock, 1) == [ack(message)]

    assert handler.control_ids == [b"HELD0", b"HELD1"]
    assert server.stats.refused_connections == 1
