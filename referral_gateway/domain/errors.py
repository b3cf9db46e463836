"""Everything the domain raises, in one tree.

    DomainError (ValueError)   input no correct caller or configuration would give
    ├── ValueSetError          a value-set file is malformed (names the file and key)
    ├── SiteConfigError        the site configuration is malformed (names the key)
    ├── ReportMonthError       a month that is not YYYY-MM with a month 01-12
    ├── ReportFormatError      a report dict this software did not write (names the part)
    ├── DisclosureError        figures handed to disclosure control break an invariant
    ├── CorpusError            an evaluation corpus file is malformed (names file and line)
    └── AlertError             an alert asked to carry more than site, kind, count and link

Refusals and decisions are values, not errors: a detection that is not a candidate, a
refused signature (`report_formats.signing.Refused`), a refused envelope. The consent core
keeps its own tree (`consent.errors`). No message carries identifiable data.

The other layers draw theirs at the top of one module each: `storage.errors`,
`services.errors`, `web.errors`, `adapters.hl7.errors`, `adapters.fhir.errors`.
"""

from __future__ import annotations


class DomainError(ValueError):
    """Base of everything the domain raises. Also a ValueError."""


class ValueSetError(DomainError):
    """A value-set file is malformed. The message names the file and the offending key."""


class SiteConfigError(DomainError):
    """The site configuration is malformed. The message names the offending key."""


class ReportMonthError(DomainError):
    """A month that is not of the form YYYY-MM with a month 01-12."""


class ReportFormatError(DomainError):
    """A report dict that is not a report this software wrote. Says which part, never
    echoes values."""


class DisclosureError(DomainError):
    """The figures handed to disclosure control break an invariant (negative counts, a
    relation that does not add up)."""


class CorpusError(DomainError):
    """An evaluation corpus file is malformed: the message names the file and line."""


class AlertError(DomainError):
    """An alert was asked to carry something it may not (only site, kind, count and link)."""
