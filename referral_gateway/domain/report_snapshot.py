"""Frozen monthly reports: canonical JSON with a SHA-256 checksum, and the envelope that
carries one to the programme hub.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, integers and strings only
(the published report has no floats), so the same report always gives the same bytes and
the same checksum on any machine. A snapshot is made once per site and month and never
changed; the checksum lets anyone holding it check that it was not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_gateway.domain.errors import ReportFormatError
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import CONTROLLED, PublishedReport

ENVELOPE_FORMAT = "rg-report-envelope/1"
MAX_ENVELOPE_BYTES = 2 * 1024 * 1024


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def checksum_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class ReportSnapshot:
    report_id: str
    site: str
    month: ReportMonth
    created_at: datetime
    body: bytes  # canonical JSON of the published report
    checksum: str  # sha256 hex of body

    @classmethod
    def freeze(
        cls, report: PublishedReport, *, report_id: str, created_at: datetime
    ) -> ReportSnapshot:
        if report.disclosure != CONTROLLED:
            raise ReportFormatError("only a disclosure-controlled report can be frozen")
        if created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        body = canonical_json(report.to_dict())
        return cls(report_id, report.site, report.month, created_at, body, checksum_of(body))

    def report(self) -> PublishedReport:
        return PublishedReport.from_dict(json.loads(self.body))

    def is_intact(self) -> bool:
        return checksum_of(self.body) == self.checksum

    def envelope(self) -> bytes:
        """What is pushed to the hub (and what the signature covers)."""
        return canonical_json(
            {
                "format": ENVELOPE_FORMAT,
                "report_id": self.report_id,
                "site": self.site,
                "month": str(self.month),
                "created_at": self.created_at.isoformat(),
                "checksum": self.checksum,
                "report": json.loads(self.body),
            }
        )


@dataclass(frozen=True, slots=True)
class EnvelopeRefused:
    reason: str  # too_large, not_json, bad_format, checksum_mismatch, site_mismatch, not_controlled


def read_envelope(body: bytes) -> ReportSnapshot | EnvelopeRefused:
    """A pushed envelope back into a snapshot, checking that the checksum matches the
    report it carries and that the report is the disclosure-controlled one for the site and
    month the envelope names."""
    if len(body) > MAX_ENVELOPE_BYTES:
        return EnvelopeRefused("too_large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return EnvelopeRefused("not_json")
    if not isinstance(data, dict) or data.get("format") != ENVELOPE_FORMAT:
        return EnvelopeRefused("bad_format")
    report_id, checksum = data.get("report_id"), data.get("checksum")
    if not isinstance(report_id, str) or not 0 < len(report_id) <= 64:
        return EnvelopeRefused("bad_format")
    if not isinstance(checksum, str) or len(checksum) != 64:
        return EnvelopeRefused("bad_format")
    try:
        report = PublishedReport.from_dict(data.get("report"))
        created_at = datetime.fromisoformat(str(data.get("created_at")))
    except (ReportFormatError, ValueError):
        return EnvelopeRefused("bad_format")
    if created_at.utcoffset() is None:
        return EnvelopeRefused("bad_format")
    inner = canonical_json(data["report"])
    if checksum_of(inner) != checksum:
        return EnvelopeRefused("checksum_mismatch")
    if report.site != data.get("site") or str(report.month) != data.get("month"):
        return EnvelopeRefused("site_mismatch")
    if report.disclosure != CONTROLLED:
        return EnvelopeRefused("not_controlled")
    return ReportSnapshot(report_id, report.site, report.month, created_at, inner, checksum)
