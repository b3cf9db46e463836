"""Frozen monthly reports: canonical JSON with a SHA-256 checksum, and the envelope that
carries one to the programme hub.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, integers and strings only
(the published report has no floats), so the same report always gives the same bytes and
the same checksum on any machine. A snapshot is never changed; the checksum lets anyone
holding it check that it was not. A month's first snapshot is version 1; a correction
(`reissue`) is a new snapshot, the next version, with the reason it was made, and the
envelope carries both so the hub can keep the history.
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
MAX_REASON_CHARS = 500


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
    version: int = 1  # 1: the scheduled freeze; 2, 3...: corrections
    reason: str | None = None  # why this version was issued (a correction always has one)

    @classmethod
    def freeze(
        cls,
        report: PublishedReport,
        *,
        report_id: str,
        created_at: datetime,
        version: int = 1,
        reason: str | None = None,
    ) -> ReportSnapshot:
        if report.disclosure != CONTROLLED:
            raise ReportFormatError("only a disclosure-controlled report can be frozen")
        if created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        if version < 1:
            raise ValueError("a report version starts at 1")
        reason = correction_reason(reason) if reason is not None else None
        if version > 1 and reason is None:
            raise ReportFormatError("a corrected report needs the reason it was re-issued")
        body = canonical_json(report.to_dict())
        return cls(
            report_id,
            report.site,
            report.month,
            created_at,
            body,
            checksum_of(body),
            version,
            reason,
        )

    def report(self) -> PublishedReport:
        return PublishedReport.from_dict(json.loads(self.body))

    def is_intact(self) -> bool:
        return checksum_of(self.body) == self.checksum

    def envelope(self) -> bytes:
        """What is pushed to the hub (and what the signature covers). The version and the
        reason go with it, so a correction reaches the hub as one."""
        data: dict[str, Any] = {
            "format": ENVELOPE_FORMAT,
            "report_id": self.report_id,
            "site": self.site,
            "month": str(self.month),
            "created_at": self.created_at.isoformat(),
            "checksum": self.checksum,
            "version": self.version,
            "report": json.loads(self.body),
        }
        if self.reason is not None:
            data["reason"] = self.reason
        return canonical_json(data)


def correction_reason(text: str) -> str:
    """A re-issue's reason as kept: one line, trimmed, 1 to 500 characters. The reason is
    shown to programme leads, so it describes the correction, never a person."""
    reason = " ".join(text.split())
    if not reason:
        raise ReportFormatError("a corrected report needs the reason it was re-issued")
    if len(reason) > MAX_REASON_CHARS:
        raise ReportFormatError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    return reason


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
    version, reason = data.get("version", 1), data.get("reason")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return EnvelopeRefused("bad_format")
    if reason is not None:
        if not isinstance(reason, str):
            return EnvelopeRefused("bad_format")
        try:
            reason = correction_reason(reason)
        except ReportFormatError:
            return EnvelopeRefused("bad_format")
    return ReportSnapshot(
        report_id, report.site, report.month, created_at, inner, checksum, version, reason
    )
