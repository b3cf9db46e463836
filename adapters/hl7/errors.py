"""Errors raised while reading HL7 v2 messages.

    Hl7Error                  base of everything this package raises on bad input
    ├── UnreadableMessage     not HL7 we can read: no MSH, bad MSH-1/MSH-2, empty, binary junk
    └── UnmappableMessage     readable HL7 that cannot become an AttendanceEvent
                              (e.g. an ADT A01 with neither PV1-19 nor a patient identifier)

    SenderConfigError (ValueError)  the `[sites.X.mllp]` configuration is malformed (names
                                    the key); raised at start-up, never for a message

A message we simply do not care about (an ORU, an ADT A28) is not an error: the mapping
returns None and the pipeline counts it as filtered.

Privacy: messages name the segment and field that is wrong ("PV1-19 visit number is empty"),
never a field's value. `segment`/`field` say where, and `code` is the HL7 table 0357 error
code an ACK's ERR segment can carry (see `adapters.hl7.ack.AckError.from_exception`).
"""

from __future__ import annotations


class Hl7Error(Exception):
    """Base class. `code` is an HL7 table 0357 error condition code."""

    default_code = "207"  # application internal error

    def __init__(
        self,
        message: str,
        *,
        segment: str | None = None,
        field: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.segment = segment
        self.field = field
        self.code = code or self.default_code


class UnreadableMessage(Hl7Error):
    """The input is not an HL7 v2 message we can read (no MSH, bad encoding characters...)."""

    default_code = "100"  # segment sequence error: MSH is not where it must be


class UnmappableMessage(Hl7Error):
    """Readable HL7 that cannot become an AttendanceEvent (a required key is missing)."""

    default_code = "101"  # required field missing


class SenderConfigError(ValueError):
    """The ``[sites.X.mllp]`` configuration is malformed; the message names the key."""
