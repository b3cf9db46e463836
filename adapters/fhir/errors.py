"""What can go wrong with a FHIR interaction, each with the HTTP status it is answered with.

    FhirError                        (answered as an OperationOutcome)
    ├── BadRequest            400    not JSON, not a resource, ids that disagree
    ├── Unauthorized          401    no bearer token
    ├── Forbidden             403    a token we do not know, or one that was revoked
    ├── NoSuchEndpoint        404    no such endpoint or resource type
    ├── MethodNotAllowed      405    an interaction the CapabilityStatement does not list
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415    not application/fhir+json (or json), or not FHIR R4
    ├── PreconditionFailed    412    If-Match version mismatch, several If-None-Exist matches
    ├── Unprocessable         422    an invalid resource (issue.expression names the element)
    ├── SourceUnavailable     502    a source server we fetch from did not answer usefully
    └── StorageUnavailable    503    the database did not take the write: try again

    SourceConfigError (ValueError)   a [fhir.sources.*] table is malformed (names the key)

Errors of the core reaching the adapter are translated where they arrive (the intake
stopping, `services.errors.IntakeClosed`, becomes StorageUnavailable; a stored payload that
cannot be read becomes `services.errors.MessageRejected` for the error store).

Issues never carry identifiable values: they name elements and rules, not what was in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue. `code` is from the FHIR issue-type value set."""

    severity: str  # fatal | error | warning | information
    code: str  # invalid | structure | required | value | not-supported | conflict | ...
    diagnostics: str
    expression: tuple[str, ...] = ()


class FhirError(Exception):
    status = 500
    code = "exception"

    def __init__(
        self,
        diagnostics: str,
        *,
        issues: Sequence[Issue] = (),
        code: str | None = None,
        expression: Sequence[str] = (),
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        if issues:
            self.issues: tuple[Issue, ...] = tuple(issues)
        else:
            self.issues = (Issue("error", code or self.code, diagnostics, tuple(expression)),)

    def with_prefix(self, prefix: str) -> FhirError:
        """The same error with each expression moved under `prefix` (a Bundle entry)."""
        moved = tuple(
            Issue(
                i.severity,
                i.code,
                i.diagnostics,
                tuple(_under(prefix, e) for e in i.expression) or (prefix,),
            )
            for i in self.issues
        )
        clone = type(self)(self.diagnostics, issues=moved)
        return clone


def _under(prefix: str, expression: str) -> str:
    _, _, rest = expression.partition(".")
    return f"{prefix}.{rest}" if rest else prefix


class BadRequest(FhirError):
    status = 400
    code = "invalid"


class Unauthorized(FhirError):
    status = 401
    code = "login"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NoSuchEndpoint(FhirError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class PreconditionFailed(FhirError):
    status = 412
    code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-long"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    status = 422
    code = "processing"


class SourceUnavailable(FhirError):
    status = 502
    code = "transient"


class StorageUnavailable(FhirError):
    status = 503
    code = "transient"


class SourceConfigError(ValueError):
    """A [fhir.sources.*] table is malformed; the message names the key."""
