"""HL7 v2 in the gateway: frames from the MLLP listener (or files being replayed) become
stored arrivals and ACKs; stored messages become AttendanceEvents.

The ACK path does only what it must: decode the bytes, read the MSH, commit, answer. The
full mapping runs later in the pipeline, off the sender's clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.hl7.ack import AckError, ErrorCode, ack_plan, build_ack, rejection_code
from adapters.hl7.diagnose import diagnose
from adapters.hl7.er7 import (
    FACILITY_CODE,
    SEGMENT_TERMINATOR,
    Er7Message,
    MessageHeader,
    decode_message,
    read_header,
    salvage_header,
    split_messages,
)
from adapters.hl7.errors import Hl7Error, UnmappableMessage, UnreadableMessage
from adapters.hl7.mapping import to_attendance_event
from adapters.hl7.mllp import Peer
from adapters.hl7.return_link import ReturnLink
from adapters.hl7.senders import Action, ApplicationAcks, SenderDirectory, SenderSite
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
        # the site the intake resolved from the sender's configuration (rows stored before
        # it did so may hold MSH-4 whole: then MSH-4.1 is read again)
        site = message.site if FACILITY_CODE.match(message.site) else None
        event = to_attendance_event(Er7Message(text), site=site)
    except UnreadableMessage as exc:
        raise MessageRejected("parse", f"{exc} ({diagnose(text)})") from None
    except UnmappableMessage as exc:
        raise MessageRejected("map", f"{exc} ({diagnose(text)})") from None
    except Hl7Error as exc:
        raise MessageRejected("map", str(exc)) from None
    return [event] if event is not None else []


@dataclass(frozen=True)
class Received:
    """One message of a frame, with what its ACK needs. `arrival` None: not stored at all
    (refused by sender); `problem` set: answered with a reject (AR, or CR in enhanced mode)."""

    arrival: Arrival | None
    header: MessageHeader | None
    problem: AckError | None
    sender: SenderSite | None = None


@dataclass(slots=True)
class Hl7IntakeStats:
    """Counters since the intake was built."""

    rejected_senders: int = 0
    quarantined: int = 0
    application_acks_sent: int = 0
    application_acks_not_configured: int = 0
    application_acks_late: int = 0


class Hl7Intake:
    """The MLLP listener's handler: store each message, then acknowledge it.

    One reply per message on the connection it came on: the ACK (original mode) or the
    accept ACK (enhanced mode, unless MSH-15 says NE). An application ACK (MSH-16) goes
    where the sender's configuration says (`adapters.hl7.senders`): to its return address
    once processed, after the accept ACK on the same connection for a sender that reads
    replies asynchronously, or nowhere (counted, and logged once per sender).
    """

    def __init__(
        self,
        intake: IntakeWriter,
        clock: Callable[[], datetime],
        *,
        watch: ProcessingWatch | None = None,
        senders: SenderDirectory | None = None,
        application_ack_timeout: float = 10.0,
        return_ack_timeout: float = 3600.0,
    ) -> None:
        self.intake = intake
        self.clock = clock
        self.watch = watch
        self.senders = senders if senders is not None else SenderDirectory()
        self.application_ack_timeout = application_ack_timeout
        self.return_ack_timeout = return_ack_timeout
        self.stats = Hl7IntakeStats()
        self._ids = itertools.count(1)
        self._prefix = hashlib.sha1(str(clock()).encode()).hexdigest()[:6]  # noqa: S324
        self._links: dict[tuple[str, int], ReturnLink] = {}
        self._pending_returns: set[asyncio.Task[None]] = set()
        self._told_no_route: set[str] = set()
        self._told_refusals: set[tuple[str, str]] = set()

    def receive(self, data: bytes, peer: Peer | None = None) -> list[Received]:
        """Split a frame or file into messages and prepare each for storage. `peer` is the
        connection (None for files): with the senders' configuration it decides whether a
        message is taken, held in quarantine or refused."""
        now = self.clock()
        text = decode_message(data)
        parts = split_messages(text) if text.strip() else []
        if not parts:
            return [self._unreadable(data, now, "no HL7 message found", None)]
        received = []
        for part in parts:
            payload = part.encode("utf-8")
            try:
                header = read_header(part)
            except UnreadableMessage as exc:
                received.append(self._unreadable(payload, now, str(exc), salvage_header(part)))
                continue
            unusable = _unusable(header, part)
            if unusable is not None:
                received.append(self._unreadable(payload, now, unusable.message, header, unusable))
                continue
            facility = header.sending_facility.split(header.separators.component, 1)[0]
            verdict = self.senders.identify(facility, peer)
            if verdict.action is Action.REJECT:
                self.stats.rejected_senders += 1
                self._tell_refusal(peer.host if peer is not None else "a file", verdict.reason)
                problem = AckError(
                    code=ErrorCode(verdict.error_code),
                    message=verdict.reason,
                    segment="MSH",
                    field=verdict.field,
                )
                received.append(Received(None, header, problem, verdict.sender))
                continue
            key = header.control_id or "sha256:" + hashlib.sha256(payload).hexdigest()
            state = "pending"
            if verdict.action is Action.QUARANTINE:
                state = "quarantined"
                self.stats.quarantined += 1
                log.warning(
                    "HL7 message for site %s from %s held in quarantine: the connection is "
                    "not one the site lists",
                    verdict.site,
                    peer.host if peer is not None else "a file",
                )
            received.append(
                Received(
                    arrival=Arrival(
                        channel=CHANNEL,
                        sender=f"{header.sending_application}^{header.sending_facility}",
                        message_key=key,
                        message_type=f"{header.message_type}^{header.trigger_event}".strip("^"),
                        site=verdict.site,
                        payload=payload,
                        received_at=now,
                        state=state,
                        error_detail=(
                            f"from {peer.host if peer is not None else 'a file'}: not a "
                            "network or certificate the site lists"
                            if state == "quarantined"
                            else None
                        ),
                    ),
                    header=header,
                    problem=None,
                    sender=verdict.sender,
                )
            )
        return received

    def _tell_refusal(self, source: str, reason: str) -> None:
        """Log a refused sender once per address and reason (a flood must not flood the
        log); the rest are counted in `stats.rejected_senders`."""
        if (source, reason) in self._told_refusals or len(self._told_refusals) >= 1000:
            return
        self._told_refusals.add((source, reason))
        log.warning(
            "HL7 message from %s refused: %s (logged once per address and reason)",
            source,
            reason,
        )

    def _unreadable(
        self,
        payload: bytes,
        now: datetime,
        why: str,
        header: MessageHeader | None,
        problem: AckError | None = None,
    ) -> Received:
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
            header=header,
            problem=problem or AckError(code=ErrorCode.SEGMENT_SEQUENCE_ERROR, message=why),
        )

    def acknowledge(self, item: Received, stored_ok: bool) -> str | None:
        """The one reply to a message on its connection, or None where the sender asked
        for none (MSH-15 NE, or SU when the news is not good)."""
        if item.problem is not None:
            code = rejection_code(item.header)
            if code is None:
                return None
            return build_ack(
                item.header,
                code,
                now=self.clock(),
                control_id=self._next_control_id(),
                error=item.problem,
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
            item.header,
            plan.send_now,
            now=self.clock(),
            control_id=self._next_control_id(),
            error=error,
        )

    async def __call__(self, frame: bytes, peer: Peer) -> list[bytes]:
        replies: list[bytes] = []
        for item in self.receive(frame, peer):
            stored: Stored | None = None
            if item.arrival is not None:
                try:
                    stored = await self.intake.store_async(item.arrival)
                except Exception as exc:
                    log.error(
                        "storage failed for a message from %s: %s", peer.host, type(exc).__name__
                    )
            ack = self.acknowledge(item, stored is not None)
            if ack is not None:
                replies.append(ack.encode("utf-8"))
            if stored is None or item.header is None or item.problem is not None:
                continue
            assert item.arrival is not None
            if not ack_plan(item.header, stored_ok=True).application_ack_wanted:
                continue
            if item.arrival.state == "quarantined":
                self._no_application_ack(item, "its message is held in quarantine")
                continue
            route = item.sender.application_acks if item.sender else ApplicationAcks.NONE
            if route is ApplicationAcks.SAME_CONNECTION:
                application_ack = await self._application_ack(
                    item.header, stored, self.application_ack_timeout
                )
                if application_ack is not None:
                    replies.append(application_ack.encode("utf-8"))
            elif route is ApplicationAcks.RETURN:
                assert item.sender is not None
                self._return_later(item.header, stored, item.sender)
            else:
                self._no_application_ack(item, "no application_acks route is configured")
        return replies

    def _no_application_ack(self, item: Received, why: str) -> None:
        self.stats.application_acks_not_configured += 1
        assert item.arrival is not None
        who = item.arrival.site
        if who not in self._told_no_route:
            self._told_no_route.add(who)
            log.warning(
                "application ACKs asked for (MSH-16) by site %s are not sent: %s "
                "(logged once per sender; counted in the listener's statistics)",
                who,
                why,
            )

    def _return_later(self, header: MessageHeader, stored: Stored, sender: SenderSite) -> None:
        address = (sender.return_host, sender.return_port)
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = ReturnLink(*address)

        async def wait_then_send() -> None:
            ack = await self._application_ack(header, stored, self.return_ack_timeout)
            if ack is not None:
                link.send(ack.encode("utf-8"))

        task = asyncio.get_running_loop().create_task(wait_then_send())
        self._pending_returns.add(task)
        task.add_done_callback(self._pending_returns.discard)

    async def close(self) -> None:
        """Stop waiting to return application ACKs and close the return connections."""
        for task in list(self._pending_returns):
            task.cancel()
        for link in self._links.values():
            await link.close()

    async def _application_ack(
        self, header: MessageHeader, stored: Stored, timeout: float
    ) -> str | None:
        """Enhanced mode (MSH-16 AL/SU/ER): the outcome of processing, once known.
        If processing has not finished within the timeout nothing is sent: the message is
        safely stored and will be processed."""
        plan = ack_plan(header, stored_ok=True)
        if not plan.application_ack_wanted or self.watch is None:
            return None
        state = await self.watch.wait(stored.message_id, timeout)
        if state is None:
            self.stats.application_acks_late += 1
            log.warning("no application ACK: processing took longer than %.0fs", timeout)
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
        self.stats.application_acks_sent += 1
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


def _unusable(header: MessageHeader, text: str) -> AckError | None:
    """Why a readable header still leaves nothing to process: no message type (MSH-9), or
    no segment after the MSH. None when the message is usable."""
    if not header.message_type:
        return AckError(
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            message="MSH-9 message type is empty",
            segment="MSH",
            field=9,
        )
    if SEGMENT_TERMINATOR not in text.strip(SEGMENT_TERMINATOR):
        return AckError(
            code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
            message="the message has no segment after MSH",
            segment="MSH",
        )
    return None
