"""OperationOutcomes and the other response bodies the FHIR endpoint sends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from adapters.fhir.errors import FhirError, Issue

FHIR_JSON = "application/fhir+json; charset=utf-8"


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [_issue(i) for i in issues]
        or [{"severity": "information", "code": "informational", "diagnostics": "ok"}],
    }


def error_outcome(error: FhirError) -> dict[str, Any]:
    return operation_outcome(error.issues)


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {
        "severity": issue.severity,
        "code": issue.code,
        "diagnostics": issue.diagnostics,
    }
    if issue.expression:
        out["expression"] = list(issue.expression)
    return out


def status_line(status: int) -> str:
    """'201 Created', as Bundle.entry.response.status wants it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def etag(version: int) -> str:
    return f'W/"{version}"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)
