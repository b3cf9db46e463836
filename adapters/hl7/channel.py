"""HL7 v2 in the gateway: frames from the MLLP listener (or files being replayed) become
stored arrivals and ACKs; stored messages become AttendanceEvents.

The ACK path does only what it must: decode the bytes, read the MSH, commit, answer. The
full mapping runs later in the pipeline, off the sender's clock.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.hl7.ack import AckError, ErrorCode, ack_plan, build_ack
from adapters.hl7.diagnose import diagnose
from adapters.hl7.er7 import Er7Message, MessageHeader, decode_message, read_header, split_messages
from adapters.hl7.errors import Hl7Error, UnmappableMessage, UnreadableMessage
from adapters.hl7.mapping import to_attendance_event
from adapters.hl7.mllp import Peer
from referral_gateway.domain.attendance import AttendanceEvent
from referral_gateway.services.completion import ProcessingWatch
from referral_gateway.services.errors import MessageRejected
from referral_gateway.services.intake import IntakeWriter
from referral_gateway.storage.inbox import Arrival, PendingMessage, Stored

CHANNEL = "hl7v2"
log = logging.getLogger(__name__)


def decode_stored(message: PendingMessage) -> Sequence[AttendanceEvent]:
    """Stored payloads are the message as UTF-8 text with `\\r` separators."""
    text = message.payload.decode("utf-8")
    try:
        event = to_attendance_event(Er7Message(text))
    except UnreadableMessage as exc:
        raise MessageRejected("parse", f"{exc} ({diagnose(text)})") from None
    except UnmappableMessage as exc:
        raise MessageRejected("map", f"{exc} ({diagnose(text)})") from None
    except Hl7Error as exc:
        raise MessageRejected("map", str(exc)) from None
    return [event] if event is not None else []


@dataclass(frozen=True)
class Received:
    """One message of a frame, ready to store, with what its ACK needs."""

    arrival: Arrival
    header: MessageHeader | None
    problem: AckError | None


class Hl7Intake:
    """The MLLP listener's handler: store each message, then acknowledge it."""

    def __init__(
        self,
        intake: IntakeWriter,
        clock: Callable[[], datetime],
        *,
        watch: ProcessingWatch | None = None,
        application_ack_timeout: float = 10.0,
    ) -> None:
        self.intake = intake
        self.clock = clock
        self.watch = watch
        self.application_ack_timeout = application_ack_timeout
        self._ids = itertools.count(1)
        self._prefix = hashlib.sha1(str(clock()).encode()).hexdigest()[:6]  # noqa: S324

    def receive(self, data: bytes) -> list[Received]:
        """Split a frame or file into messages and prepare each for storage."""
        now = self.clock()
        text = decode_message(data)
        parts = split_messages(text) if text.strip() else []
        if not parts:
            return [self._unreadable(data, now, "no HL7 message found")]
        received = []
        for part in parts:
            try:
                header = read_header(part)
            except UnreadableMessage as exc:
                received.append(self._unreadable(part.encode("utf-8"), now, str(exc)))
                continue
            payload = part.encode("utf-8")
            key = header.control_id or "sha256:" + hashlib.sha256(payload).hexdigest()
            received.append(
                Received(
                    arrival=Arrival(
                        channel=CHANNEL,
                        sender=f"{header.sending_application}^{header.sending_facility}",
                        message_key=key,
                        message_type=f"{header.message_type}^{header.trigger_event}".strip("^"),
                        site=header.sending_facility,
                        payload=payload,
                        received_at=now,
                    ),
                    header=header,
                    problem=None,
                )
            )
        return received

    def _unreadable(self, payload: bytes, now: datetime, why: str) -> Received:
        return Received(
            arrival=Arrival(
                channel=CHANNEL,
                sender="unknown",
                message_key="unreadable:" + hashlib.sha256(payload).hexdigest(),
                message_type="",
                site="",
                payload=payload,
                received_at=now,
                state="error",
                error_stage="receive",
                error_detail=why[:1000],
            ),
            header=None,
            problem=AckError(code=ErrorCode.SEGMENT_SEQUENCE_ERROR, message=why),
        )

    def acknowledge(self, item: Received, stored_ok: bool) -> str | None:
        """The ACK for one message, or None where the sender asked for none."""
        control_id = self._next_control_id()
        if item.header is None:
            return build_ack(
                None, "AR", now=self.clock(), control_id=control_id, error=item.problem
            )
        plan = ack_plan(item.header, stored_ok)
        if plan.send_now is None:
            return None
        error = (
            None
            if stored_ok
            else AckError(
                code=ErrorCode.APPLICATION_INTERNAL_ERROR, message="message could not be stored"
            )
        )
        return build_ack(
            item.header, plan.send_now, now=self.clock(), control_id=control_id, error=error
        )

    async def __call__(self, frame: bytes, peer: Peer) -> list[bytes]:
        replies: list[bytes] = []
        for item in self.receive(frame):
            stored: Stored | None = None
            try:
                stored = await self.intake.store_async(item.arrival)
            except Exception as exc:
                log.error("storage failed for a message from %s: %s", peer.host, type(exc).__name__)
            ack = self.acknowledge(item, stored is not None)
            if ack is not None:
                replies.append(ack.encode("utf-8"))
            if stored is not None and item.header is not None:
                application_ack = await self._application_ack(item.header, stored)
                if application_ack is not None:
                    replies.append(application_ack.encode("utf-8"))
        return replies

    async def _application_ack(self, header: MessageHeader, stored: Stored) -> str | None:
        """Enhanced mode (MSH-16 AL/SU/ER): after the accept ACK, the outcome of processing.
        If processing has not finished within the timeout nothing is sent: the message is
        safely stored and will be processed."""
        plan = ack_plan(header, stored_ok=True)
        if not plan.application_ack_wanted or self.watch is None:
            return None
        state = await self.watch.wait(stored.message_id, self.application_ack_timeout)
        if state is None:
            log.warning(
                "no application ACK: processing took longer than %.0fs",
                self.application_ack_timeout,
            )
            return None
        code = plan.application_ack_code(processed_ok=state != "error")
        if code is None:
            return None
        error = None
        if state == "error":
            error = AckError(
                code=ErrorCode.APPLICATION_INTERNAL_ERROR,
                message="the message was stored but could not be processed",
            )
        return build_ack(
            header, code, now=self.clock(), control_id=self._next_control_id(), error=error
        )

    def oversize_reply(self, head: bytes) -> bytes:
        """The AR for a frame over the size limit, echoing its MSH-10 when the head shows it."""
        try:
            header: MessageHeader | None = read_header(decode_message(head))
        except Hl7Error:
            header = None
        ack = build_ack(
            header,
            "AR",
            now=self.clock(),
            control_id=self._next_control_id(),
            error=AckError(
                code=ErrorCode.APPLICATION_INTERNAL_ERROR,
                message="message larger than the gateway accepts (RG_MLLP_MAX_FRAME_BYTES)",
            ),
        )
        return ack.encode("utf-8")

    def _next_control_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"
