"""One sentence on what is structurally wrong with a message, for the error store.

Slow (an hl7apy parse costs milliseconds): run it only for messages that already failed,
never on the ACK path. The sentence names segments, fields and data types, never a value:
hl7apy's own exception texts can quote values, so they are translated, not passed on.

Checks, in order: our own reader (empty, no MSH, bad MSH-1/MSH-2, several messages in one
text); hl7apy `parse_message` (tolerant, find_groups=False); hl7apy validation of each
segment (required fields, too many fields/components/repetitions); and, when hl7apy knows
the message structure, a second tolerant parse with groups to check required segments and
repeats at message level (hl7apy cannot check segment order and ignores Z-segments there).
"""

from __future__ import annotations

import re

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Segment
from hl7apy.exceptions import (
    HL7apyException,
    InvalidEncodingChars,
    InvalidName,
    ParserError,
    UnsupportedVersion,
)
from hl7apy.parser import parse_message

from adapters.hl7.er7 import Er7Message, normalise_text, split_messages
from adapters.hl7.errors import UnreadableMessage

_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"
_MISSING = re.compile(rf"Missing required child ({_NAME})\.({_NAME})")
_INVALID_CHILDREN = re.compile(
    rf"Invalid children detected for <(Segment|Field|Component|Message|Group|SubComponent) "
    rf"({_NAME})[^>]*?(?:of type ({_NAME}))?>"
)
_LIMIT = re.compile(rf"Child limit exceeded ({_NAME})\.({_NAME})")
_DATATYPE = re.compile(rf"Datatype .*? is not correct for ({_NAME})\.({_NAME})")
_FIELD = re.compile(r"([A-Z][A-Z0-9]{2})_(\d+)\Z")
_COMPONENT = re.compile(r"[A-Z][A-Z0-9]{1,3}_(\d+)\Z")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_VERSION = re.compile(r"\d(?:\.\d{1,2}){1,3}\Z")


def diagnose(text: str) -> str:
    """Describe in one sentence what is structurally wrong with `text`, quoting no values."""
    if not text.strip():
        return "The message is empty."
    text = normalise_text(text)
    try:
        ours = Er7Message(text)
    except UnreadableMessage as error:
        return f"Not readable as HL7 v2: {error.message}."
    count = len(split_messages(text))
    if count > 1:
        return f"The text holds {count} messages (a batch or several MSH segments), not one."
    version = ours.header.version

    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    except UnsupportedVersion:
        shown = f" {version}" if _VERSION.match(version) else ""
        return f"hl7apy cannot parse the message: MSH-12 version{shown} is missing or unsupported."
    except InvalidEncodingChars:
        return "hl7apy cannot parse the message: MSH-2 encoding characters are invalid."
    except InvalidName:
        return f"hl7apy cannot parse the message: {_bad_segment_name(ours, version)}."
    except ParserError:
        return "hl7apy cannot parse the message: it does not find a well-formed MSH segment."
    except (HL7apyException, ValueError, TypeError, AttributeError, KeyError) as error:
        return f"hl7apy cannot parse the message ({type(error).__name__})."

    problems: list[str] = []
    if message.name is None:
        problems.append("MSH-9 names a message structure hl7apy does not know")
    for position, segment in enumerate(message.children, start=1):
        try:
            segment.validate()
        except (HL7apyException, ValueError, TypeError, AttributeError, KeyError) as error:
            problems.append(f"Segment {position} ({segment.name}): {_describe(error)}")
    if not problems:
        problems = _message_problems(text, message.name)
    if not problems:
        return "hl7apy found no structural problem."
    more = len(problems) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{problems[0]}{tail}."


def _message_problems(text: str, structure: str | None) -> list[str]:
    """Required segments and repeats at message level (needs hl7apy's group detection).

    Run only when every segment passed on its own, so the first error hl7apy raises here is
    about the message's shape rather than a field already reported.
    """
    if structure is None:
        return []
    try:
        grouped = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
        grouped.validate()
    except (HL7apyException, ValueError, TypeError, AttributeError, KeyError) as error:
        return [f"Message structure {structure}: {_describe(error)}"]
    return []


def _bad_segment_name(message: Er7Message, version: str) -> str:
    for position, segment in enumerate(message, start=1):
        if not segment.name:
            return f"segment {position} does not start with a segment name"
    for position, segment in enumerate(message, start=1):
        if _SEGMENT_ID.match(segment.name) and not segment.name.startswith("Z"):
            known = _known_segment(segment.name, version)
            if not known:
                return f"segment {position} ({segment.name}) is not a segment of version {version}"
    return "a segment name is not recognised"


def _known_segment(name: str, version: str) -> bool:
    try:
        Segment(name, version=version)
    except (HL7apyException, ValueError, TypeError, AttributeError, KeyError):
        return False
    return True


def _describe(error: Exception) -> str:
    """hl7apy's exception text turned into a value-free phrase."""
    said = str(error)
    found = _MISSING.search(said)
    if found:
        parent, child = found.groups()
        return f"{_where(parent, child)} is required but missing"
    found = _INVALID_CHILDREN.search(said)
    if found:
        kind, name, datatype = found.groups()
        if kind == "Segment":
            return f"segment {name} has more fields than its definition in this version"
        if kind in ("Field", "Component", "SubComponent"):
            of_type = f" of data type {datatype}" if datatype else ""
            return f"{_where(name)}{of_type} has more components than its definition"
        return f"{kind.lower()} {name} holds segments its definition does not allow"
    found = _LIMIT.search(said)
    if found:
        parent, child = found.groups()
        return f"{_where(parent, child)} repeats more often than allowed"
    found = _DATATYPE.search(said)
    if found:
        parent, child = found.groups()
        return f"{_where(parent, child)} has the wrong data type or too many subcomponents"
    return f"hl7apy validation failed ({type(error).__name__})"


def _where(parent: str, child: str | None = None) -> str:
    """hl7apy element names as HL7 positions: PV1 + PV1_2 -> field PV1-2, MSH_7 + TS_2 ->
    component MSH-7.2, ADT_A01 + PID -> segment PID."""
    field = _FIELD.match(parent)
    if child is None:
        return f"field {field.group(1)}-{field.group(2)}" if field else parent
    child_field = _FIELD.match(child)
    child_component = _COMPONENT.match(child)
    if child_field and child_field.group(1) == parent:
        return f"field {child_field.group(1)}-{child_field.group(2)}"
    if field and child_component:
        return f"component {field.group(1)}-{field.group(2)}.{child_component.group(1)}"
    if _SEGMENT_ID.match(child):
        return f"segment {child}"
    if child_field:
        return f"field {child_field.group(1)}-{child_field.group(2)}"
    return f"{parent}.{child}"
