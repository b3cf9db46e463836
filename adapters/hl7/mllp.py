"""An asyncio MLLP listener: frames in, the handler's replies out, nothing about HL7 content.

Transport only. The listener cuts the byte stream into MLLP frames, hands each frame to a
`FrameHandler` and writes back, framed, whatever replies the handler returns. Reading ER7 and
building ACKs belong to other modules; this one never looks inside a frame.

Framing (MLLP release 1/2 block format, read tolerantly):

* A frame starts at a start block byte ``0x0B`` and ends at the next end block byte ``0x1C``.
  The carriage return that should follow ``0x1C`` is expected but not required: the frame is
  complete at ``0x1C`` and a following ``\\r`` is simply a byte outside any frame. So a bare
  ``0x1C`` (at the end of the stream or anywhere else) also ends a frame.
* Bytes outside frames (the ``\\r`` after ``0x1C``, stray newlines, keep-alive junk) are ignored;
  non-whitespace junk is counted and reported, by count only, when the connection closes.
* A ``0x0B`` inside a frame means the sender abandoned the frame and began a new one: the
  partial frame is dropped (never handed on, never answered) and the new frame starts.
* A frame still open when the stream ends is dropped and not answered.
* A frame whose content exceeds ``max_frame_bytes`` is not buffered: only its first bytes are
  kept, the rest is counted and thrown away up to its ``0x1C``; then ``on_oversize(first bytes)``
  builds the reply (the caller's AR) and the connection carries on. Without ``on_oversize`` the
  connection is closed instead, so the sender gets a prompt signal rather than a silent wait.
* The handler gets every complete frame, an empty one included, as the bytes between the
  block markers, unmodified.

Time limits, so that no client can hold a slot by sending slowly:

* ``frame_timeout_s``: a frame must end within this long of its start block. A frame still
  open at its deadline is dropped, never answered, and the connection is closed.
* ``idle_timeout_s``: a connection that completes no frame for this long is closed. Only a
  complete frame restarts this clock: bytes outside frames (keep-alive junk, a drip of
  newlines) never do, so trailing bytes cannot keep a connection open.
* ``max_connections_per_address``: one remote address may hold at most this many of the
  ``max_connections`` slots, so a misbehaving (or hostile) client cannot crowd out the
  real feed arriving from another address.

Connections are persistent and carry many frames. Frames on one connection are handled strictly
in order: frame i's handler runs, its replies are written and drained, and only then does frame
i+1's handler run, so a sender's ordering holds. Different connections run concurrently.

Failure policy: an exception from the handler (or from ``on_oversize``), or a reply that is not
bytes or contains a block marker, closes that connection without writing anything for the
frame: nothing was acknowledged, so the sender will resend. The server keeps serving.

Privacy: log lines carry counts, sizes, exception type names, code locations and the sending
system's address, never frame bytes or exception messages (which may quote patient data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\r"

OVERSIZE_HEAD_BYTES = 4096
"""How many leading bytes of an oversized frame are kept and passed to ``on_oversize``:
enough for any sane MSH segment, so the caller can answer with MSH-10 in MSA-2."""

_WHITESPACE = b"\r\n\t "
_CLOSE_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Peer:
    """The sending system at the other end of a connection (its address, not a person's)."""

    host: str
    port: int
    tls: bool
    certificate_subject: str = ""
    """The TLS client certificate's subject as ``CN=...,O=...`` (RFC 4514 short names, in
    the certificate's order); empty without TLS or when no client certificate was verified."""


class FrameHandler(Protocol):
    async def __call__(self, frame: bytes, peer: Peer) -> Sequence[bytes]:
        """Take one frame's content; return zero or more unframed replies to write, in order."""
        ...


@dataclass(frozen=True, slots=True)
class MllpLimits:
    max_connections: int = 64
    idle_timeout_s: float = 300.0
    max_frame_bytes: int = 4 * 1024 * 1024
    read_chunk: int = 65536
    frame_timeout_s: float = 60.0
    max_connections_per_address: int = 16

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_connections_per_address < 1:
            raise ValueError("max_connections_per_address must be at least 1")
        if not self.idle_timeout_s > 0:
            raise ValueError("idle_timeout_s must be positive")
        if not self.frame_timeout_s > 0:
            raise ValueError("frame_timeout_s must be positive")
        if self.max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be at least 1")
        if self.read_chunk < 1:
            raise ValueError("read_chunk must be at least 1")


@dataclass(frozen=True, slots=True)
class MllpStats:
    """Counters since the server was built; a snapshot, safe to read from another thread."""

    open_connections: int = 0
    accepted_connections: int = 0
    refused_connections: int = 0
    frames_received: int = 0
    replies_sent: int = 0
    oversize_frames: int = 0
    handler_failures: int = 0
    idle_timeouts: int = 0
    frame_timeouts: int = 0


# --- framing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame within the size limit: the bytes between 0x0B and 0x1C."""

    content: bytes


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A complete frame over the size limit: its first bytes and its total content size."""

    head: bytes
    size: int


FrameEvent = Frame | OversizeFrame

_OUTSIDE, _INSIDE, _DISCARDING = range(3)


class MllpFrameDecoder:
    """Cuts a byte stream into frames, holding at most ``max_frame_bytes`` of any one frame.

    Feed it chunks as they arrive, in any split; it returns the frames completed by each chunk.
    Pure and synchronous, so the framing rules can be tested without sockets.
    """

    def __init__(self, max_frame_bytes: int, *, head_bytes: int = OVERSIZE_HEAD_BYTES) -> None:
        self._max = max_frame_bytes
        self._head_bytes = min(head_bytes, max_frame_bytes)
        self._state = _OUTSIDE
        self._buffer = bytearray()
        self._size = 0
        self._head = b""
        self.junk_bytes = 0
        """Non-whitespace bytes seen outside frames."""
        self.abandoned_frames = 0
        """Frames cut short by a new start block."""
        self.frames_begun = 0
        """Start blocks seen (a frame's start time is taken when this count moves)."""

    @property
    def in_frame(self) -> bool:
        """A start block has been seen and its frame has not ended yet."""
        return self._state != _OUTSIDE

    @property
    def pending_bytes(self) -> int:
        """Content bytes of a frame begun but not yet ended (0 when between frames)."""
        return 0 if self._state == _OUTSIDE else self._size

    @property
    def held_bytes(self) -> int:
        """Bytes held in memory for the current frame: never more than ``max_frame_bytes``."""
        return len(self._buffer) + len(self._head)

    def feed(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            if self._state == _OUTSIDE:
                start = data.find(START_BLOCK, pos)
                stop = end if start < 0 else start
                if stop > pos:
                    self.junk_bytes += len(bytes(view[pos:stop]).translate(None, _WHITESPACE))
                if start < 0:
                    break
                self._begin_frame()
                pos = start + 1
                continue
            # Inside a frame: the next control byte is the first end block or a start block
            # before it (searching for 0x0B only up to the end block keeps this linear).
            eb = data.find(END_BLOCK, pos)
            limit = end if eb < 0 else eb
            sb = data.find(START_BLOCK, pos, limit)
            stop = sb if sb >= 0 else limit
            self._take(view[pos:stop])
            if stop == end:
                break
            if sb >= 0:
                self.abandoned_frames += 1
                self._begin_frame()
            else:
                events.append(self._finish_frame())
            pos = stop + 1
        return events

    def _begin_frame(self) -> None:
        self.frames_begun += 1
        self._state = _INSIDE
        self._buffer = bytearray()
        self._size = 0
        self._head = b""

    def _take(self, piece: memoryview) -> None:
        if not piece:
            return
        if self._state == _INSIDE and self._size + len(piece) > self._max:
            kept = bytes(self._buffer[: self._head_bytes])
            self._head = kept + bytes(piece[: self._head_bytes - len(kept)])
            self._buffer = bytearray()
            self._state = _DISCARDING
        if self._state == _INSIDE:
            self._buffer += piece
        self._size += len(piece)

    def _finish_frame(self) -> FrameEvent:
        event: FrameEvent
        if self._state == _DISCARDING:
            event = OversizeFrame(head=self._head, size=self._size)
        else:
            event = Frame(content=bytes(self._buffer))
        self._state = _OUTSIDE
        self._buffer = bytearray()
        self._size = 0
        self._head = b""
        return event


def frame(message: bytes) -> bytes:
    """Wrap one message in an MLLP block: 0x0B message 0x1C 0x0D."""
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


# --- server ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counters:
    open_connections: int = 0
    accepted_connections: int = 0
    refused_connections: int = 0
    frames_received: int = 0
    replies_sent: int = 0
    oversize_frames: int = 0
    handler_failures: int = 0
    idle_timeouts: int = 0
    frame_timeouts: int = 0


@dataclass(eq=False, slots=True)
class _Connection:
    peer: Peer
    task: asyncio.Task[None] | None
    reading: bool = False
    frames: int = 0


def _describe_failure(exc: BaseException) -> str:
    """The exception's type and where it was raised: never its message, which may hold data."""
    name = type(exc).__qualname__
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return name
    last = frames[-1]
    return f"{name} at {last.filename}:{last.lineno} in {last.name}"


class MllpServer:
    """Listens for MLLP connections and feeds each frame to ``handler``, in order per connection.

    ``port=0`` picks a free port (read it back from ``port`` after ``start``). ``ssl_context``
    turns on TLS for every connection. ``on_oversize`` builds the reply to a frame over
    ``limits.max_frame_bytes`` from the frame's first bytes (the caller's AR).
    """

    def __init__(
        self,
        handler: FrameHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        limits: MllpLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_oversize: Callable[[bytes], bytes] | None = None,
        on_replied: Callable[[float], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        """`on_replied(seconds)`: after each message's replies are written, the time from its
        frame's end to then (the ACK latency the metrics keep)."""
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._limits = limits if limits is not None else MllpLimits()
        self._ssl_context = ssl_context
        self._on_oversize = on_oversize
        self._on_replied = on_replied
        self._log = log if log is not None else logging.getLogger(__name__)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._counters = _Counters()
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._bound_port = 0

    # -- lifecycle --

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("MLLP server already started")
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(
            self._serve_connection,
            self._host,
            self._requested_port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=(
                self._limits.frame_timeout_s if self._ssl_context is not None else None
            ),
            limit=max(self._limits.read_chunk, 2**16),
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])
        self._log.info(
            "MLLP listening on %s:%d (tls=%s, max_connections=%d, "
            "max_connections_per_address=%d, idle_timeout_s=%g, frame_timeout_s=%g, "
            "max_frame_bytes=%d)",
            self._host,
            self.port,
            self._ssl_context is not None,
            self._limits.max_connections,
            self._limits.max_connections_per_address,
            self._limits.idle_timeout_s,
            self._limits.frame_timeout_s,
            self._limits.max_frame_bytes,
        )

    @property
    def serving(self) -> bool:
        """Accepting connections (readiness)."""
        return self._server is not None and self._server.is_serving() and not self._stopping

    @property
    def port(self) -> int:
        """The port actually bound (useful after ``port=0``)."""
        if self._server is None:
            raise RuntimeError("MLLP server not started")
        return self._bound_port

    @property
    def stats(self) -> MllpStats:
        c = self._counters
        return MllpStats(
            open_connections=c.open_connections,
            accepted_connections=c.accepted_connections,
            refused_connections=c.refused_connections,
            frames_received=c.frames_received,
            replies_sent=c.replies_sent,
            oversize_frames=c.oversize_frames,
            handler_failures=c.handler_failures,
            idle_timeouts=c.idle_timeouts,
            frame_timeouts=c.frame_timeouts,
        )

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop accepting; close connections waiting for input at once; let connections inside
        a handler finish that frame and write its replies, then close them.

        With ``timeout``, handlers still running after that many seconds are cancelled (their
        frames go unanswered, so the sender resends). Without, waits for them however long.
        """
        if self._server is None or self._stopping:
            if self._stopped is not None:
                await self._stopped.wait()
            return
        self._stopping = True
        self._server.close()
        for conn in list(self._connections):
            if conn.reading and conn.task is not None:
                conn.task.cancel()
        tasks = [c.task for c in self._connections if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                self._log.warning(
                    "MLLP stop: cancelling %d handler(s) still running after %gs",
                    len(pending),
                    timeout,
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        await self._server.wait_closed()
        self._log.info("MLLP listener on port %d stopped", self._bound_port)
        assert self._stopped is not None
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Start if needed and serve until ``stop`` is called; on cancellation, stop gracefully."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise

    # -- one connection --

    def _peer_of(self, writer: asyncio.StreamWriter) -> Peer:
        address = writer.get_extra_info("peername")
        tls = self._ssl_context is not None
        subject = certificate_subject(writer.get_extra_info("peercert")) if tls else ""
        if isinstance(address, tuple) and len(address) >= 2:
            return Peer(
                host=str(address[0]), port=int(address[1]), tls=tls, certificate_subject=subject
            )
        return Peer(host="", port=0, tls=tls, certificate_subject=subject)

    def _refusal(self, peer: Peer) -> str | None:
        """Why a new connection from `peer` is refused (a log phrase), or None to accept it."""
        if len(self._connections) >= self._limits.max_connections:
            return f"max_connections={self._limits.max_connections} reached"
        same = sum(1 for c in self._connections if c.peer.host == peer.host)
        if same >= self._limits.max_connections_per_address:
            return (
                f"max_connections_per_address={self._limits.max_connections_per_address} "
                "reached for its address"
            )
        return None

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = self._peer_of(writer)
        if self._stopping:
            await _close_quietly(writer)
            return
        refusal = self._refusal(peer)
        if refusal is not None:
            self._counters.refused_connections += 1
            self._log.warning(
                "MLLP connection from %s:%d refused: %s", peer.host, peer.port, refusal
            )
            await _close_quietly(writer)
            return
        conn = _Connection(peer=peer, task=asyncio.current_task())
        self._connections.add(conn)
        self._counters.accepted_connections += 1
        self._counters.open_connections += 1
        self._log.debug("MLLP connection from %s:%d opened", peer.host, peer.port)
        decoder = MllpFrameDecoder(self._limits.max_frame_bytes)
        try:
            await self._converse(conn, decoder, reader, writer)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        except Exception as exc:  # a bug here must cost one connection, not the server
            self._log.error(
                "MLLP connection from %s:%d failed: %s",
                peer.host,
                peer.port,
                _describe_failure(exc),
            )
        finally:
            self._connections.discard(conn)
            self._counters.open_connections -= 1
            if decoder.junk_bytes or decoder.abandoned_frames:
                self._log.warning(
                    "MLLP connection from %s:%d sent %d byte(s) outside frames and "
                    "abandoned %d frame(s)",
                    peer.host,
                    peer.port,
                    decoder.junk_bytes,
                    decoder.abandoned_frames,
                )
            self._log.debug(
                "MLLP connection from %s:%d closed after %d frame(s)",
                peer.host,
                peer.port,
                conn.frames,
            )
            await _close_quietly(writer)

    async def _converse(
        self,
        conn: _Connection,
        decoder: MllpFrameDecoder,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer = conn.peer
        loop = asyncio.get_running_loop()
        limits = self._limits
        idle_deadline = loop.time() + limits.idle_timeout_s  # moved on by complete frames only
        frame_deadline = 0.0  # meaningful while the decoder is inside a frame
        frames_begun = decoder.frames_begun
        while not self._stopping:
            in_frame = decoder.in_frame
            deadline = min(idle_deadline, frame_deadline) if in_frame else idle_deadline
            conn.reading = True
            try:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(limits.read_chunk)
            except TimeoutError:
                if in_frame and frame_deadline <= idle_deadline:
                    self._counters.frame_timeouts += 1
                    self._log.warning(
                        "MLLP connection from %s:%d did not finish a frame within %gs; "
                        "%d byte(s) dropped, closing",
                        peer.host,
                        peer.port,
                        limits.frame_timeout_s,
                        decoder.pending_bytes,
                    )
                else:
                    self._counters.idle_timeouts += 1
                    self._log.info(
                        "MLLP connection from %s:%d completed no frame for %gs; closing",
                        peer.host,
                        peer.port,
                        limits.idle_timeout_s,
                    )
                return
            except OSError as exc:
                self._log.info(
                    "MLLP connection from %s:%d lost while reading (%s)",
                    peer.host,
                    peer.port,
                    type(exc).__name__,
                )
                return
            finally:
                conn.reading = False
            if not data:
                if decoder.pending_bytes:
                    self._log.warning(
                        "MLLP connection from %s:%d ended inside a frame; %d byte(s) dropped",
                        peer.host,
                        peer.port,
                        decoder.pending_bytes,
                    )
                return
            events = decoder.feed(data)
            for event in events:
                if not await self._answer(event, conn, writer):
                    return
                if self._stopping:
                    return
            # the clocks start after this chunk's frames were answered: a slow handler never
            # eats into the sender's time
            if events:
                idle_deadline = loop.time() + limits.idle_timeout_s
            if decoder.frames_begun != frames_begun:
                frames_begun = decoder.frames_begun
                frame_deadline = loop.time() + limits.frame_timeout_s

    async def _answer(
        self, event: FrameEvent, conn: _Connection, writer: asyncio.StreamWriter
    ) -> bool:
        """Handle one frame and write its replies. False means: close the connection."""
        peer = conn.peer
        replies: object
        began = time.perf_counter()
        if isinstance(event, OversizeFrame):
            self._counters.oversize_frames += 1
            self._log.warning(
                "MLLP frame of %d bytes from %s:%d exceeds max_frame_bytes=%d; discarded",
                event.size,
                peer.host,
                peer.port,
                self._limits.max_frame_bytes,
            )
            if self._on_oversize is None:
                self._log.warning("no on_oversize reply configured; closing the connection")
                return False
            try:
                replies = [self._on_oversize(event.head)]
            except Exception as exc:
                self._counters.handler_failures += 1
                self._log.error(
                    "MLLP on_oversize failed: %s; closing connection from %s:%d without reply",
                    _describe_failure(exc),
                    peer.host,
                    peer.port,
                )
                return False
        else:
            self._counters.frames_received += 1
            conn.frames += 1
            try:
                replies = await self._handler(event.content, peer)
            except Exception as exc:
                self._counters.handler_failures += 1
                self._log.error(
                    "MLLP handler failed: %s; closing connection from %s:%d without reply",
                    _describe_failure(exc),
                    peer.host,
                    peer.port,
                )
                return False
        wire = self._frame_replies(replies)
        if wire is None:
            self._counters.handler_failures += 1
            self._log.error(
                "MLLP reply is not a sequence of bytes free of block markers; closing "
                "connection from %s:%d without reply",
                peer.host,
                peer.port,
            )
            return False
        if not wire:
            return True
        try:
            writer.write(b"".join(wire))
            async with asyncio.timeout(self._limits.frame_timeout_s):
                await writer.drain()
        except (TimeoutError, OSError) as exc:
            self._log.info(
                "MLLP connection from %s:%d lost while writing (%s)",
                peer.host,
                peer.port,
                type(exc).__name__,
            )
            return False
        self._counters.replies_sent += len(wire)
        if self._on_replied is not None:
            self._on_replied(time.perf_counter() - began)
        return True

    @staticmethod
    def _frame_replies(replies: object) -> list[bytes] | None:
        if isinstance(replies, bytes | bytearray | memoryview | str):
            return None  # one message where a sequence of messages was promised
        if not isinstance(replies, Sequence):
            return None
        wire: list[bytes] = []
        for reply in replies:
            if not isinstance(reply, bytes | bytearray):
                return None
            if START_BLOCK in reply or END_BLOCK in reply:
                return None
            wire.append(frame(bytes(reply)))
        return wire


_SUBJECT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "domainComponent": "DC",
}


def certificate_subject(peercert: object) -> str:
    """A verified peer certificate's subject (``ssl`` `getpeercert()` form) as
    ``CN=...,O=...``; "" when there is none."""
    if not isinstance(peercert, dict):
        return ""
    parts = []
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            parts.append(f"{_SUBJECT_NAMES.get(name, name)}={value}")
    return ",".join(parts)


async def _close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_WAIT_S):
            await writer.wait_closed()
