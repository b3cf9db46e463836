"""A small, fast reader for HL7 v2 ER7 ("pipe and hat") messages.

The hot path (ACK, mapping) reads messages with this module, not hl7apy: splitting on the
separators costs microseconds where a full hl7apy parse costs milliseconds. hl7apy is kept
for `adapters.hl7.diagnose`, run only on messages that failed.

- `decode_message(bytes) -> str`: honours MSH-18, falls back to UTF-8 then cp1252/latin-1,
  strips BOM and MLLP/whitespace junk, normalises segment separators to ``\\r``.
- `split_messages(text) -> list[str]`: cuts a batch (FHS/BHS ... BTS/FTS) or a file holding
  several messages into single messages.
- `read_header(text) -> MessageHeader`: reads MSH alone (enough to ACK).
- `Er7Message(text)`: segments -> fields (split once), repetitions -> components ->
  subcomponents (split on demand). Numbering is HL7's: MSH-1 is the field separator itself,
  so MSH-10 is the control id; components and repetitions count from 1.
  Values read through `get`/`text` are unescaped (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh..\\).

Reprs show segment names and counts only: values may be identifiable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from adapters.hl7.errors import UnreadableMessage

LONDON = ZoneInfo("Europe/London")
"""Naive HL7 timestamps are taken as Europe/London wall-clock time."""

SEGMENT_TERMINATOR = "\r"
BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JUNK = "\ufeff\x00\x0b\x1c \t\r\n"  # BOM, NUL, MLLP block bytes, whitespace
_SEGMENT_END_JUNK = " \t\x00\x0b\x1c\ufeff"
_LINE_BREAK = re.compile(r"[\r\n]")
_MSH_START = re.compile(r"(?:\A|[\r\n])[\s\x00\x0b\x1c\ufeff]*(MSH)")
_FIRST_HEADER = re.compile(r"MSH|FHS|BHS")
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}\Z")

# MSH-18 (HL7 table 0211) -> Python codec. ISO 8859-1 is read as cp1252, its superset for
# printable text (what browsers do with the label): senders on Windows often send cp1252
# quotes under an 8859/1 label, and 0x80-0x9F are control codes in true latin-1 anyway.
_CHARSETS = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "cp1252",
    "ISO IR100": "cp1252",
    "8859/2": "iso8859_2",
    "ISO IR101": "iso8859_2",
    "8859/3": "iso8859_3",
    "ISO IR109": "iso8859_3",
    "8859/4": "iso8859_4",
    "ISO IR110": "iso8859_4",
    "8859/5": "iso8859_5",
    "ISO IR144": "iso8859_5",
    "8859/6": "iso8859_6",
    "ISO IR127": "iso8859_6",
    "8859/7": "iso8859_7",
    "ISO IR126": "iso8859_7",
    "8859/8": "iso8859_8",
    "ISO IR138": "iso8859_8",
    "8859/9": "iso8859_9",
    "ISO IR148": "iso8859_9",
    "8859/15": "iso8859_15",
    "UNICODE": "utf-8",  # in practice (e.g. NHS ITK feeds) "UNICODE" arrives as UTF-8
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "BIG-5": "big5",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "ISO IR87": "iso2022_jp",
}


# ---------------------------------------------------------------------------------------------
# Bytes to text


def decode_message(data: bytes) -> str:
    """Turn received bytes into message text with ``\\r`` between segments.

    Strips a UTF-8 BOM; honours MSH-18 (first repetition) when it names a known character
    set; otherwise, or when the bytes do not decode as declared, tries UTF-8, then cp1252,
    then latin-1 (which never fails). Then normalises ``\\r\\n``/``\\n``/``\\r`` to ``\\r``,
    drops blank lines, trailing blanks/TABs/NULs at segment ends, junk before the first
    MSH/FHS/BHS on the first line (MLLP start bytes, NULs, whitespace) and at the end.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
        declared: str | None = "utf-8"
    elif data[:2] in _UTF16_BOMS:
        declared = "utf-16"
    else:
        declared = _declared_codec(data)
    return normalise_text(_decode(data, declared))


def normalise_text(text: str) -> str:
    """Normalise already-decoded text the way `decode_message` does."""
    text = text.lstrip(_JUNK)
    if not text.startswith(("MSH", "FHS", "BHS")):
        first_line = _LINE_BREAK.split(text, maxsplit=1)[0]
        found = _FIRST_HEADER.search(first_line)
        if found is not None:
            text = text[found.start() :]
    return _join_segments(text)


def _join_segments(text: str) -> str:
    """One ``\\r`` between segments; no blank segments; no blanks/TABs/NULs at segment ends."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    segments = [segment.strip(_SEGMENT_END_JUNK) for segment in text.split(SEGMENT_TERMINATOR)]
    return SEGMENT_TERMINATOR.join(segment for segment in segments if segment)


def _decode(data: bytes, declared: str | None) -> str:
    tried: list[str] = []
    for codec in (declared, "utf-8", "cp1252"):
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _declared_codec(data: bytes) -> str | None:
    start = data.find(b"MSH")
    if start < 0:
        head = data[:256]
        if b"M\x00S\x00H\x00" in head:
            return "utf-16-le"
        if b"\x00M\x00S\x00H" in head:
            return "utf-16-be"
        return None
    line = data[start:]
    for stop in (line.find(b"\r"), line.find(b"\n")):
        if stop >= 0:
            line = line[:stop]
    if len(line) < 5:
        return None
    fields = line.split(line[3:4])
    if len(fields) < 18:
        return None
    encoding_chars, value = fields[1], fields[17]
    for separator in (encoding_chars[1:2], encoding_chars[0:1]):  # first repetition/component
        if separator:
            value = value.split(separator)[0]
    name = " ".join(value.decode("ascii", "ignore").upper().split())
    return _CHARSETS.get(name)


# ---------------------------------------------------------------------------------------------
# Batches and files of several messages


def split_messages(text: str) -> list[str]:
    """Split a batch file or a file of several messages into single messages.

    FHS/BHS/BTS/FTS wrapper segments are dropped; each MSH starts a new message. Segments
    before the first MSH that are not wrappers are returned as a message of their own (it will
    fail to read as one, so nothing is dropped silently). Messages come back with ``\\r``
    between segments and no trailing terminator.
    """
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    messages: list[str] = []
    current: list[str] = []
    for raw in text.split(SEGMENT_TERMINATOR):
        segment = raw.strip(_JUNK)
        if not segment:
            continue
        name = segment[:3]
        if name in BATCH_SEGMENTS or name == "MSH":
            if current:
                messages.append(SEGMENT_TERMINATOR.join(current))
            current = [segment] if name == "MSH" else []
        else:
            current.append(segment)
    if current:
        messages.append(SEGMENT_TERMINATOR.join(current))
    return messages


# ---------------------------------------------------------------------------------------------
# Separators and escapes


@dataclass(frozen=True, slots=True)
class Separators:
    """MSH-1 and MSH-2. `escape`, `subcomponent` and `truncation` may be empty (not declared)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    @classmethod
    def from_msh(cls, segment: str) -> Separators:
        """Read MSH-1/MSH-2 from an MSH segment's text; UnreadableMessage when they are bad."""
        if len(segment) < 4 or not segment.startswith("MSH"):
            raise UnreadableMessage("MSH-1 field separator is missing", segment="MSH", field=1)
        field = segment[3]
        end = segment.find(field, 4)
        return _separators(field, segment[4:] if end < 0 else segment[4:end])

    @classmethod
    def from_encoding_characters(cls, field: str, chars: str) -> Separators:
        return cls.from_msh("MSH" + field + chars + field)


DEFAULT_SEPARATORS = Separators()


@lru_cache(maxsize=64)
def _separators(field: str, chars: str) -> Separators:
    if field.isalnum() or field in "\r\n ":
        raise UnreadableMessage(
            "MSH-1 field separator is a letter, digit or blank", segment="MSH", field=1
        )
    if (
        not 2 <= len(chars) <= 5
        or len(set(chars)) != len(chars)
        or field in chars
        or any(c.isalnum() or c.isspace() for c in chars)
    ):
        raise UnreadableMessage(
            "MSH-2 encoding characters are missing or invalid", segment="MSH", field=2, code="102"
        )
    return Separators(field, chars[0], chars[1], chars[2:3], chars[3:4], chars[4:5])


@lru_cache(maxsize=16)
def _escape_sequence(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(f"{e}([^{e}\r]*){e}")


def unescape(value: str, separators: Separators) -> str:
    """Resolve HL7 escape sequences in a leaf value.

    \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ (and \\P\\ in v2.7+) become the separators; \\Xhh..\\ is hex
    (read as UTF-8, else latin-1); \\.br\\ and \\.sp\\ become a newline; other formatting,
    highlighting and character-set switches are dropped; unknown sequences are left as sent.
    """
    escape = separators.escape
    if not escape or escape not in value:
        return value

    def resolve(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "F":
            return separators.field
        if code == "S":
            return separators.component
        if code == "T":
            return separators.subcomponent
        if code == "R":
            return separators.repetition
        if code == "E":
            return escape
        if code == "P" and separators.truncation:
            return separators.truncation
        if code[:1] == "X" and len(code) > 1:
            try:
                raw = bytes.fromhex(code[1:])
            except ValueError:
                return match.group(0)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        if code in (".br", ".sp"):
            return "\n"
        if code in ("H", "N") or code[:1] in (".", "C", "M"):
            return ""
        return match.group(0)

    return _escape_sequence(escape).sub(resolve, value)


@lru_cache(maxsize=16)
def _special_characters(separators: Separators) -> re.Pattern[str]:
    chars = separators.field + separators.encoding_characters + "\\\r\n"
    return re.compile("[" + re.escape(chars) + "]")


def escape(value: str, separators: Separators) -> str:
    """Escape text so it can be written into an ER7 field with these separators."""
    if not _special_characters(separators).search(value):
        return value
    esc = separators.escape or "\\"
    out = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (separators.field, "F"),
        (separators.component, "S"),
        (separators.subcomponent, "T"),
        (separators.repetition, "R"),
        (separators.truncation, "P"),
    ):
        if char:
            out = out.replace(char, f"{esc}{code}{esc}")
    return out.replace("\r", f"{esc}X0D{esc}").replace("\n", f"{esc}X0A{esc}")


def _pick(raw: str, seps: Separators, repetition: int, component: int, subcomponent: int) -> str:
    for separator, index in (
        (seps.repetition, repetition),
        (seps.component, component),
        (seps.subcomponent, subcomponent),
    ):
        if separator and separator in raw:
            parts = raw.split(separator)
            if not 1 <= index <= len(parts):
                return ""
            raw = parts[index - 1]
        elif index != 1:
            return ""
    return unescape(raw, seps)


# ---------------------------------------------------------------------------------------------
# Message, segments, repetitions


class Repetition:
    """One repetition of a field: components split once, on first use."""

    __slots__ = ("_components", "_separators", "raw")

    def __init__(self, raw: str, separators: Separators) -> None:
        self.raw = raw
        self._separators = separators
        self._components: list[str] | None = None

    def get(self, component: int = 1, subcomponent: int = 1) -> str:
        """Unescaped component (and subcomponent); "" when absent."""
        components = self._components
        if components is None:
            separator = self._separators.component
            components = self.raw.split(separator) if separator else [self.raw]
            self._components = components
        if not 1 <= component <= len(components):
            return ""
        value = components[component - 1]
        separator = self._separators.subcomponent
        if separator and separator in value:
            parts = value.split(separator)
            if not 1 <= subcomponent <= len(parts):
                return ""
            value = parts[subcomponent - 1]
        elif subcomponent != 1:
            return ""
        escape = self._separators.escape
        return unescape(value, self._separators) if escape and escape in value else value

    def text(self) -> str:
        """The whole repetition unescaped, component separators left as sent (for text types)."""
        return unescape(self.raw, self._separators)

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __repr__(self) -> str:
        return "Repetition(<value>)"


_NO_REPETITIONS: tuple[Repetition, ...] = ()


class Segment:
    """One segment; `field(n)` numbering as in HL7 (for MSH, field 1 is the separator)."""

    __slots__ = ("_fields", "_repetitions", "_separators", "name")

    def __init__(self, name: str, fields: list[str], separators: Separators) -> None:
        self.name = name
        self._fields = fields
        self._separators = separators
        self._repetitions: dict[int, tuple[Repetition, ...]] = {}

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, fields={len(self._fields) - 1})"

    def __len__(self) -> int:
        """Number of fields present (trailing empty ones included)."""
        return len(self._fields) - 1

    def raw(self, field: int) -> str:
        """A field exactly as sent (separators and escapes intact); "" when absent."""
        if 1 <= field < len(self._fields):
            return self._fields[field]
        return ""

    def _is_encoding_field(self, field: int) -> bool:
        return field <= 2 and self.name == "MSH"

    def repetitions(self, field: int) -> tuple[Repetition, ...]:
        """The field's repetitions (an empty field gives an empty tuple)."""
        found = self._repetitions.get(field)
        if found is not None:
            return found
        raw = self.raw(field)
        seps = self._separators
        if not raw:
            found = _NO_REPETITIONS
        elif self._is_encoding_field(field) or not seps.repetition:
            found = (Repetition(raw, seps),)
        else:
            found = tuple(Repetition(r, seps) for r in raw.split(seps.repetition))
        self._repetitions[field] = found
        return found

    def get(
        self, field: int, component: int = 1, subcomponent: int = 1, *, repetition: int = 1
    ) -> str:
        """Unescaped value at field.component.subcomponent of a repetition; "" when absent."""
        if self._is_encoding_field(field):
            return self.raw(field)
        reps = self.repetitions(field)
        if not 1 <= repetition <= len(reps):
            return ""
        return reps[repetition - 1].get(component, subcomponent)

    def text(self, field: int, *, repetition: int = 1) -> str:
        """A whole repetition unescaped, for free-text fields (ST/TX/FT) sent without escaping."""
        if self._is_encoding_field(field):
            return self.raw(field)
        reps = self.repetitions(field)
        if not 1 <= repetition <= len(reps):
            return ""
        return reps[repetition - 1].text()


class Er7Message:
    """A message split once into segments and fields; finer splits happen when asked.

    Tolerant: accepts ``\\r``, ``\\n`` or ``\\r\\n`` between segments, ignores anything before
    the first MSH, blank lines, blanks/TABs/NULs at segment ends, trailing separators and
    Z-segments; a missing segment or field reads as "". Lines whose first field is not a
    segment name (free-text junk) are kept with the name "". Only a missing MSH or bad
    MSH-1/MSH-2 raise UnreadableMessage. One message per instance: `split_messages` first.
    """

    __slots__ = ("_by_name", "_header", "_segments", "separators")

    def __init__(self, text: str) -> None:
        if "\n" in text:
            text = text.replace("\r\n", "\r").replace("\n", "\r")
        lines = text.split(SEGMENT_TERMINATOR)
        start = -1
        for index, line in enumerate(lines):
            if line.lstrip(_JUNK).startswith("MSH"):
                start = index
                break
        if start < 0:
            raise UnreadableMessage("no MSH segment found", segment="MSH")
        separators = Separators.from_msh(lines[start].strip(_SEGMENT_END_JUNK))
        field_separator = separators.field
        segments: list[Segment] = []
        by_name: dict[str, list[Segment]] = {}
        for line in lines[start:]:
            line = line.strip(_SEGMENT_END_JUNK)
            if not line:
                continue
            fields = line.split(field_separator)
            name = fields[0].upper()
            if name == "MSH":
                fields.insert(1, field_separator)
            elif not _SEGMENT_NAME.match(name):
                name = ""
            segment = Segment(name, fields, separators)
            segments.append(segment)
            by_name.setdefault(name, []).append(segment)
        self.separators = separators
        self._segments = segments
        self._by_name = by_name
        self._header: MessageHeader | None = None

    def __repr__(self) -> str:
        header = self.header
        return (
            f"Er7Message({header.message_type}^{header.trigger_event}, "
            f"segments={len(self._segments)})"
        )

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    @property
    def segment_names(self) -> tuple[str, ...]:
        return tuple(segment.name for segment in self._segments)

    def segments(self, name: str | None = None) -> list[Segment]:
        """All segments with this name, in order (all segments when name is None)."""
        if name is None:
            return list(self._segments)
        return list(self._by_name.get(name, ()))

    def segment(self, name: str) -> Segment | None:
        """The first segment with this name, or None."""
        found = self._by_name.get(name)
        return found[0] if found else None

    def get(
        self,
        name: str,
        field: int,
        component: int = 1,
        subcomponent: int = 1,
        *,
        repetition: int = 1,
    ) -> str:
        """Unescaped value from the first `name` segment, e.g. ``get("PID", 3)``; "" if absent."""
        found = self._by_name.get(name)
        if not found:
            return ""
        return found[0].get(field, component, subcomponent, repetition=repetition)

    @property
    def header(self) -> MessageHeader:
        if self._header is None:
            msh = self._segments[0]
            self._header = _header_from_fields(msh._fields, self.separators)
        return self._header


# ---------------------------------------------------------------------------------------------
# Header


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What MSH says, enough to acknowledge and route a message without parsing the rest.

    The four application/facility fields (HD) and `control_id` are kept exactly as sent
    (components and escapes intact) so an ACK can echo them. The others are unescaped first
    components; `accept_ack_type`/`application_ack_type` are upper-cased.
    """

    field_separator: str
    encoding_characters: str
    sending_application: str  # MSH-3
    sending_facility: str  # MSH-4
    receiving_application: str  # MSH-5
    receiving_facility: str  # MSH-6
    message_type: str  # MSH-9.1, e.g. "ADT"
    trigger_event: str  # MSH-9.2, e.g. "A01"
    message_structure: str  # MSH-9.3, e.g. "ADT_A01" ("" before v2.3.1)
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1, e.g. "P"
    version: str  # MSH-12.1, e.g. "2.5.1"
    accept_ack_type: str  # MSH-15: AL, NE, ER, SU or ""
    application_ack_type: str  # MSH-16: AL, NE, ER, SU or ""
    charset: str  # MSH-18 first repetition, e.g. "UNICODE UTF-8"

    @property
    def separators(self) -> Separators:
        return Separators.from_encoding_characters(self.field_separator, self.encoding_characters)


def read_header(text: str) -> MessageHeader:
    """Read MSH only. UnreadableMessage when there is no MSH or MSH-1/MSH-2 are bad."""
    if text.startswith("MSH"):
        start = 0
    else:
        found = _MSH_START.search(text)
        if found is None:
            raise UnreadableMessage("no MSH segment found", segment="MSH")
        start = found.start(1)
    end = len(text)
    for stop in (text.find("\r", start), text.find("\n", start)):
        if 0 <= stop < end:
            end = stop
    line = text[start:end].rstrip(_SEGMENT_END_JUNK)
    separators = Separators.from_msh(line)
    fields = line.split(separators.field)
    fields.insert(1, separators.field)
    return _header_from_fields(fields, separators)


FACILITY_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")
"""A sending facility (MSH-4.1) that may name a site: 1-32 letters, digits, '.', '_', '-'."""

_READABLE_CONTROL_ID = re.compile(r"[\x20-\x7e]{1,199}\Z")


def salvage_header(text: str) -> MessageHeader | None:
    """What can still be read from an MSH that `read_header` refuses, to answer it properly.

    When MSH-1 is a usable field separator but MSH-2 is not (``^~\\\\&`` is seen in real
    feeds), the fields are cut on MSH-1 alone and read with the default encoding
    characters, so a reject can echo MSH-10 and address the sender. The header returned keeps
    the bad MSH-2, so `MessageHeader.separators` still refuses it (an ACK then uses the
    defaults). MSH-10 is kept only when it is 1-199 printable ASCII characters. None when
    there is no MSH or MSH-1 itself is unusable.
    """
    found = _MSH_START.search(text)
    if found is None:
        return None
    line = _LINE_BREAK.split(text[found.start(1) :], maxsplit=1)[0].rstrip(_SEGMENT_END_JUNK)
    if len(line) < 5 or line[3].isalnum() or line[3] in "\r\n ":
        return None
    field_separator = line[3]
    fields = line.split(field_separator)
    fields.insert(1, field_separator)
    header = _header_from_fields(fields, replace(DEFAULT_SEPARATORS, field=field_separator))
    if not _READABLE_CONTROL_ID.match(header.control_id):
        header = replace(header, control_id="")
    return header


def _header_from_fields(fields: list[str], seps: Separators) -> MessageHeader:
    def raw(n: int) -> str:
        return fields[n] if n < len(fields) else ""

    def first(n: int, component: int = 1) -> str:
        value = raw(n)
        return _pick(value, seps, 1, component, 1).strip() if value else ""

    return MessageHeader(
        field_separator=seps.field,
        encoding_characters=raw(2),
        sending_application=raw(3),
        sending_facility=raw(4),
        receiving_application=raw(5),
        receiving_facility=raw(6),
        message_type=first(9).upper(),
        trigger_event=first(9, 2).upper(),
        message_structure=first(9, 3).upper(),
        control_id=raw(10),
        processing_id=first(11),
        version=first(12),
        accept_ack_type=first(15).upper(),
        application_ack_type=first(16).upper(),
        charset=first(18),
    )


# ---------------------------------------------------------------------------------------------
# Timestamps

_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?\s*([+-]\d{4})?")


def parse_timestamp(value: str, *, local: tzinfo = LONDON) -> datetime | None:
    """HL7 TS/DTM (``YYYYMMDD[HH[MM[SS[.S...]]]][+/-ZZZZ]``) to an aware datetime.

    Naive values are wall-clock time in `local` (Europe/London). None when empty or coarser
    than a day (``YYYY``, ``YYYYMM``: not a point in time). ValueError when malformed.
    """
    value = value.strip()
    if not value:
        return None
    match = _TS.fullmatch(value)
    if match is None:
        raise ValueError("not an HL7 timestamp")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if month is None or day is None:
        if hour is None and offset is None:
            return None
        raise ValueError("not an HL7 timestamp")
    if fraction is not None and second is None:
        raise ValueError("not an HL7 timestamp")
    zone: tzinfo = local
    if offset is not None:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 23 or minutes > 59:
            raise ValueError("not an HL7 timezone offset")
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "0").ljust(6, "0")),
        tzinfo=zone,
    )


def parse_date(value: str) -> date | None:
    """The calendar date of an HL7 DT/TS value (``YYYYMMDD...``), no time-zone conversion.

    None when empty or coarser than a day; ValueError when malformed.
    """
    value = value.strip()
    if not value:
        return None
    match = _TS.fullmatch(value)
    if match is None:
        raise ValueError("not an HL7 date")
    year, month, day = match.group(1, 2, 3)
    if month is None or day is None:
        return None
    return date(int(year), int(month), int(day))
