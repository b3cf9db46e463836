"""Everything the storage layer raises, in one tree.

    StorageError
    ├── ConcurrentWrite     another writer stored a version of a FHIR resource first
    ├── ConcurrentChange    a referral changed between reading and writing it: read again
    ├── ApiClientError      a FHIR API client cannot be created or changed as asked
    ├── VersionRace         another process stored the same report version first
    └── AuditAnchorError    the audit anchor file cannot be read (says what to do)

Database driver errors (sqlalchemy's) pass through unchanged: the services and the edges
decide what an unavailable database means for their caller (an AE, a 503, a retry).
Messages name rows and keys, never identifiable values.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors the storage layer raises itself."""


class ConcurrentWrite(StorageError):
    """Another writer stored a version of the resource first (another process)."""


class ConcurrentChange(StorageError):
    """The referral changed between reading and writing it; read it again."""


class ApiClientError(StorageError):
    """A client cannot be created or changed as asked; the message says why."""


class VersionRace(StorageError):
    """Another process stored this version of a month's report first; read and try again."""


class AuditAnchorError(StorageError):
    """The anchor file cannot be read. The message says what to do."""
