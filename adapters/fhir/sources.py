"""FHIR servers the gateway fetches from: polled on a schedule, or named by subscription
notifications. Configured in the site configuration file (TOML)::

    [fhir.sources.rxx-epr]
    base_url = "https://fhir.rxx.example.nhs.uk/R4"
    site = "RXX01"                       # the ODS code attendances from here belong to
    poll = true                          # false: the source sends subscription notifications
    interval_seconds = 60                # between polls when poll = true
    safety_net_seconds = 900             # poll = false: poll this seldom anyway (0: never)
    lookback_hours = 24                  # how far back the first poll looks
    overlap_seconds = 120                # re-read this much before the watermark
    page_size = 100                      # _count of each search page
    max_pages = 50                       # pages per poll; the next poll carries on from there
    timeout_seconds = 30                 # per HTTP request to the source
    backoff_max_seconds = 600            # failures back off 30 s, 1 min, 2 min ... up to this
    token_file = "/etc/referral-gateway/rxx-epr.token"  # the source's bearer token, if any

The gateway only ever fetches URLs under a configured `base_url`: a notification or a
`next` link pointing elsewhere is refused, so nobody can make it fetch arbitrary URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.fhir.errors import SourceConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ODS = re.compile(r"^[A-Z0-9]{3,12}$")
SOURCE_KEYS = frozenset(
    {
        "base_url",
        "site",
        "poll",
        "interval_seconds",
        "lookback_hours",
        "overlap_seconds",
        "page_size",
        "max_pages",
        "token_file",
        "timeout_seconds",
        "backoff_max_seconds",
        "safety_net_seconds",
    }
)


@dataclass(frozen=True)
class FhirSource:
    name: str
    base_url: str  # without a trailing slash
    site: str
    poll: bool = True
    interval_seconds: float = 60.0
    lookback_hours: float = 24.0
    overlap_seconds: float = 120.0
    page_size: int = 100
    max_pages: int = 50
    timeout_seconds: float = 30.0
    backoff_max_seconds: float = 600.0
    safety_net_seconds: float = 900.0  # poll = false: a slow poll all the same; 0: none
    bearer_token: str | None = field(default=None, repr=False)

    @property
    def poll_every(self) -> float | None:
        """Seconds between polls: the interval, the safety net's pace for a source that
        sends notifications, or None when it is never polled."""
        if self.poll:
            return self.interval_seconds
        return self.safety_net_seconds or None

    def owns(self, url: str) -> bool:
        """True when `url` is on this source's server, under its base."""
        return url == self.base_url or url.startswith(self.base_url + "/")


def parse_fhir_sources(data: Mapping[str, Any]) -> tuple[FhirSource, ...]:
    """The `[fhir.sources.*]` tables of a loaded TOML document (other tables are ignored)."""
    fhir = data.get("fhir", {})
    if not isinstance(fhir, Mapping):
        raise SourceConfigError("fhir: expected a table")
    tables = fhir.get("sources", {})
    if not isinstance(tables, Mapping):
        raise SourceConfigError("fhir.sources: expected [fhir.sources.<name>] tables")
    sources = []
    for name, table in tables.items():
        where = f"fhir.sources.{name}"
        if not _NAME.match(str(name)):
            raise SourceConfigError(f"{where}: a source name is letters, digits, '-', '_', '.'")
        if not isinstance(table, Mapping):
            raise SourceConfigError(f"{where}: expected a table")
        unknown = sorted(set(table) - SOURCE_KEYS)
        if unknown:
            raise SourceConfigError(f"{where}: unknown key {unknown[0]!r}")
        base = str(table.get("base_url", "")).rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise SourceConfigError(f"{where}.base_url: expected an http(s) URL")
        site = str(table.get("site", "")).strip().upper()
        if not _ODS.match(site):
            raise SourceConfigError(f"{where}.site: expected an ODS code such as RXX01")
        token = None
        if "token_file" in table:
            try:
                token = Path(str(table["token_file"])).read_text("utf-8").strip()
            except OSError as exc:
                raise SourceConfigError(
                    f"{where}.token_file: cannot read {table['token_file']} ({type(exc).__name__})"
                ) from None
            if not token:
                raise SourceConfigError(f"{where}.token_file: the file is empty")
        try:
            sources.append(
                FhirSource(
                    name=str(name),
                    base_url=base,
                    site=site,
                    poll=bool(table.get("poll", True)),
                    interval_seconds=_positive(table, "interval_seconds", 60.0, where),
                    lookback_hours=_positive(table, "lookback_hours", 24.0, where),
                    overlap_seconds=float(table.get("overlap_seconds", 120.0)),
                    page_size=int(_positive(table, "page_size", 100, where)),
                    max_pages=int(_positive(table, "max_pages", 50, where)),
                    timeout_seconds=_positive(table, "timeout_seconds", 30.0, where),
                    backoff_max_seconds=_positive(table, "backoff_max_seconds", 600.0, where),
                    safety_net_seconds=_not_negative(table, "safety_net_seconds", 900.0, where),
                    bearer_token=token,
                )
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SourceConfigError):
                raise
            raise SourceConfigError(f"{where}: {exc}") from None
    return tuple(sources)


def _positive(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = float(table.get(key, default))
    if value <= 0:
        raise SourceConfigError(f"{where}.{key}: must be more than 0")
    return value


def _not_negative(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = float(table.get(key, default))
    if value < 0:
        raise SourceConfigError(f"{where}.{key}: must be 0 or more")
    return value
