"""Building HL7 v2 acknowledgements (ER7) and deciding which one to send.

`build_ack` writes an ACK by string formatting (microseconds, no hl7apy): MSH with sender and
receiver swapped, the inbound separators, MSH-9 ``ACK^<trigger>^ACK``, our new control id in
MSH-10, MSH-11/12 echoed; MSA with the code and the inbound MSH-10; ERR when there is an error.

`ack_plan` turns MSH-15/MSH-16 and the outcome of storing the message into what to send now
and whether an application acknowledgement is wanted later. `frame` wraps a message for MLLP.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from adapters.hl7.er7 import DEFAULT_SEPARATORS, MessageHeader, Separators, escape
from adapters.hl7.errors import Hl7Error, UnreadableMessage

ORIGINAL_CODES = frozenset({"AA", "AE", "AR"})
ENHANCED_CODES = frozenset({"CA", "CE", "CR"})
DEFAULT_VERSION = "2.5.1"  # used when the inbound version is unknown (unreadable input)


class ErrorCode(enum.StrEnum):
    """HL7 table 0357, message error condition codes."""

    MESSAGE_ACCEPTED = "0"
    SEGMENT_SEQUENCE_ERROR = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE_ERROR = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT_CODE = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION_ID = "203"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_RECORD_LOCKED = "206"
    APPLICATION_INTERNAL_ERROR = "207"

    @property
    def text(self) -> str:
        return _ERROR_TEXT[self]


_ERROR_TEXT = {
    ErrorCode.MESSAGE_ACCEPTED: "Message accepted",
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class AckError:
    """What goes into the ERR segment. `message` is ERR-8 (user message): never patient data.

    `segment`/`sequence`/`field` locate the problem (ERR-2 in v2.5+, ERR-1 before).
    `severity` is HL7 table 0516: E error, W warning, I information.
    """

    code: ErrorCode
    message: str = ""
    segment: str | None = None
    sequence: int = 1
    field: int | None = None
    severity: str = "E"

    @classmethod
    def from_exception(cls, error: Hl7Error) -> AckError:
        try:
            code = ErrorCode(error.code)
        except ValueError:
            code = ErrorCode.APPLICATION_INTERNAL_ERROR
        return cls(code=code, message=error.message, segment=error.segment, field=error.field)


def build_ack(
    header: MessageHeader | None,
    code: str,
    *,
    now: datetime,
    control_id: str,
    error: AckError | None = None,
) -> str:
    """An ER7 ACK answering `header` (segments end with ``\\r``).

    `code` is AA/AE/AR (original mode, application ack) or CA/CE/CR (enhanced mode, accept
    ack). `now` becomes MSH-7 (with its UTC offset when aware); `control_id` is our MSH-10.
    With `header` None (unreadable input) the ACK uses the default separators, version
    2.5.1, MSH-9 ``ACK^^ACK``, empty MSH-3..6 and an empty MSA-2 (HL7 makes MSA-2 required,
    but there is no control id to echo). Before v2.3.1 MSH-9 has no third component (no
    message structure existed), so it is ``ACK^<trigger>``. The ERR segment follows the
    version: ERR-2/3/4/8 from v2.5, ERR-1 (plus the text in MSA-3) before.
    """
    code = code.upper()
    if code not in ORIGINAL_CODES | ENHANCED_CODES:
        raise ValueError("acknowledgement code must be one of AA AE AR CA CE CR")
    if header is None:
        seps = DEFAULT_SEPARATORS
        version = DEFAULT_VERSION
        sender = receiver = ("", "")
        trigger = their_control_id = ""
        processing_id = "P"
        echo_version = DEFAULT_VERSION
    else:
        try:
            seps = header.separators
        except UnreadableMessage:
            seps = DEFAULT_SEPARATORS
        version = header.version or DEFAULT_VERSION
        sender = (header.receiving_application, header.receiving_facility)
        receiver = (header.sending_application, header.sending_facility)
        trigger = header.trigger_event
        their_control_id = header.control_id
        processing_id = header.processing_id or "P"
        echo_version = header.version
    fs, cs = seps.field, seps.component
    numbers = _version_numbers(version)

    message_type = "ACK"
    if numbers >= (2, 3, 1):
        message_type = f"ACK{cs}{_escape(trigger, seps)}{cs}ACK"
    elif trigger:
        message_type = f"ACK{cs}{_escape(trigger, seps)}"

    msh = [
        "MSH",
        seps.encoding_characters,
        sender[0],
        sender[1],
        receiver[0],
        receiver[1],
        _format_timestamp(now),
        "",
        message_type,
        _escape(control_id, seps),
        _escape(processing_id, seps),
        _escape(echo_version, seps),
    ]
    msa = ["MSA", code, their_control_id]
    segments = [msh, msa]
    if error is not None:
        if numbers >= (2, 5):
            segments.append(_err_v25(error, seps))
        else:
            segments.append(_err_v2x(error, seps))
            msa.append(_escape(error.message or error.code.text, seps))
    text = "\r".join(fs.join(fields) for fields in segments) + "\r"
    if not text.isascii():  # MSH-18 only when needed: `frame` always sends UTF-8
        msh += ["", "", "", "", "", "UNICODE UTF-8"]
        text = "\r".join(fs.join(fields) for fields in segments) + "\r"
    return text


def _err_v25(error: AckError, seps: Separators) -> list[str]:
    cs = seps.component
    location = ""
    if error.segment:
        parts = [error.segment, str(error.sequence)]
        if error.field is not None:
            parts.append(str(error.field))
        location = cs.join(parts)
    condition = cs.join([error.code.value, error.code.text, "HL70357"])
    return [
        "ERR",
        "",
        location,
        condition,
        error.severity,
        "",
        "",
        "",
        _escape(error.message, seps),
    ]


def _err_v2x(error: AckError, seps: Separators) -> list[str]:
    cs, ss = seps.component, seps.subcomponent or seps.component
    code = ss.join([error.code.value, error.code.text, "HL70357"])
    parts = [
        error.segment or "",
        str(error.sequence) if error.segment else "",
        str(error.field) if error.field is not None else "",
        code,
    ]
    return ["ERR", cs.join(parts)]


def _escape(value: str, seps: Separators) -> str:
    return escape(value, seps) if value else ""


def _format_timestamp(now: datetime) -> str:
    text = now.strftime("%Y%m%d%H%M%S")
    if now.tzinfo is not None and now.utcoffset() is not None:
        text += now.strftime("%z")
    return text


def _version_numbers(version: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in version.strip().split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) if numbers else (2, 5, 1)


def frame(message: str) -> bytes:
    """Wrap a message for MLLP: ``\\x0b`` + UTF-8 text + ``\\x1c\\r``."""
    return b"\x0b" + message.encode("utf-8") + b"\x1c\r"


# ---------------------------------------------------------------------------------------------
# Which acknowledgement, when


class AckMode(enum.StrEnum):
    ORIGINAL = "original"
    ENHANCED = "enhanced"


_CONDITIONS = frozenset({"AL", "NE", "ER", "SU"})


@dataclass(frozen=True, slots=True)
class AckPlan:
    """What the listener does for one stored (or not stored) message.

    `send_now`: the MSA-1 code to send on this connection now, or None to send nothing.
    `application_ack`: the MSH-16 condition that governs a later application ACK (AL, ER, SU,
    NE), "" in original mode (the ACK sent now *is* the application ACK) and when storing
    failed (nothing will be processed, so there is nothing to acknowledge later).
    """

    mode: AckMode
    send_now: str | None
    application_ack: str = ""

    @property
    def application_ack_wanted(self) -> bool:
        """Whether the sender may get an application ACK later (depending on the outcome)."""
        return self.application_ack in ("AL", "ER", "SU")

    def application_ack_code(self, processed_ok: bool) -> str | None:
        """The MSA-1 code (AA/AE) of the later application ACK, or None when none is due."""
        if _wanted(self.application_ack, ok=processed_ok):
            return "AA" if processed_ok else "AE"
        return None


def _condition(value: str, *, default: str) -> str:
    value = value.strip().upper()
    if not value:
        return default
    return value if value in _CONDITIONS else "AL"


def _wanted(condition: str, *, ok: bool) -> bool:
    return condition == "AL" or (condition == "ER" and not ok) or (condition == "SU" and ok)


def ack_plan(header: MessageHeader | None, stored_ok: bool) -> AckPlan:
    """Decide the acknowledgement for a message once we know whether it was stored.

    Original mode (MSH-15 and MSH-16 both empty, or no readable header): the one ACK is sent
    now, after the message is committed: AA when stored, AE when storing failed (the sender
    resends). It doubles as the application ACK, so nothing is owed later.

    Enhanced mode (MSH-15 or MSH-16 valued):

    - MSH-15 accept acknowledgement, sent now as CA (stored) or CE (storage failed):
      AL always; NE never; ER only when storing failed (CE); SU only when stored (CA).
      CR (reject: unsupported type/version/processing id) is the listener's choice for
      messages it refuses outright and is not planned here.
    - MSH-16 application acknowledgement, sent later by whatever processes the message, as
      AA/AE (see `AckPlan.application_ack_code`): AL always, NE never, ER only on error, SU
      only on success. If storing failed nothing will be processed, so none is planned; the
      sender learns of the failure from the CE (when MSH-15 allows it) or by its own timeout.

    Our choices where the standard leaves room: in enhanced mode an empty MSH-15 means AL
    (a sender asking for acks expects a commit answer) and an empty MSH-16 means NE. An
    unrecognised condition value is treated as AL: answering is safer than staying silent.
    """
    accept = header.accept_ack_type.strip() if header is not None else ""
    application = header.application_ack_type.strip() if header is not None else ""
    if not accept and not application:
        return AckPlan(mode=AckMode.ORIGINAL, send_now="AA" if stored_ok else "AE")
    accept_condition = _condition(accept, default="AL")
    application_condition = _condition(application, default="NE")
    send_now = None
    if _wanted(accept_condition, ok=stored_ok):
        send_now = "CA" if stored_ok else "CE"
    return AckPlan(
        mode=AckMode.ENHANCED,
        send_now=send_now,
        application_ack=application_condition if stored_ok else "",
    )


def rejection_code(header: MessageHeader | None) -> str | None:
    """The code that rejects a message we cannot or will not take, or None where the sender
    asked for no accept ACK.

    Original mode (no MSH-15/16, or no readable header): AR, the application reject that
    HL7 uses for a message refused on its header (unreadable, unusable, unknown sender).
    Enhanced mode: CR, the commit reject, when MSH-15 is AL or ER (or empty: AL); none when
    it is NE or SU (SU asks to hear of success only).
    """
    accept = header.accept_ack_type.strip() if header is not None else ""
    application = header.application_ack_type.strip() if header is not None else ""
    if not accept and not application:
        return "AR"
    return "CR" if _wanted(_condition(accept, default="AL"), ok=False) else None
