"""Per-site detection rules: the age band, the value-set version and how to read a feed.

Sites are identified by ODS code (MSH-4 or the FHIR client's site). A site that has no
configuration gets the defaults (ages 11-25 inclusive, latest value set, unknown patient
class treated as emergency) with its ODS code as its name, so a new feed works before
anyone has written its table.

Configuration arrives as a dict already loaded from TOML by the caller (`tomllib`)::

    [sites.RXX]
    name = "Example General ED"
    min_age = 11
    max_age = 25
    valueset_version = "2026.1"          # omit for the latest bundled version
    assume_emergency_when_unknown = true
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from referral_gateway.domain.errors import SiteConfigError

MAX_PLAUSIBLE_AGE = 130
_ODS_CODE = re.compile(r"^[A-Z0-9]{3,12}$")


@dataclass(frozen=True, slots=True)
class SiteRules:
    """How detection treats attendances from one site.

    `min_age` and `max_age` are inclusive ages in whole years at arrival.
    `valueset_version` None means the latest bundled value set.
    `assume_emergency_when_unknown`: ED-only feeds (syndromic feeds in particular) often
    leave PV1-2 empty; when the message says nothing about the patient class, True treats
    the attendance as an emergency attendance and False refuses it as "not_emergency".
    """

    ods_code: str
    name: str
    min_age: int = 11
    max_age: int = 25
    valueset_version: str | None = None
    assume_emergency_when_unknown: bool = True

    def __post_init__(self) -> None:
        if not self.ods_code.strip():
            raise ValueError("SiteRules.ods_code must not be empty")
        if not 0 <= self.min_age <= self.max_age <= MAX_PLAUSIBLE_AGE:
            raise ValueError(
                f"SiteRules for {self.ods_code}: need 0 <= min_age <= max_age <= "
                f"{MAX_PLAUSIBLE_AGE}, got min_age={self.min_age}, max_age={self.max_age}"
            )

    def age_in_band(self, age: int) -> bool:
        return self.min_age <= age <= self.max_age


class SiteDirectory:
    """The configured sites, and defaults for every other site."""

    def __init__(self, sites: Mapping[str, SiteRules] | None = None) -> None:
        table: dict[str, SiteRules] = {}
        for key, rules in (sites or {}).items():
            if _key(key) != _key(rules.ods_code):
                raise ValueError(
                    f"site table key {key!r} does not match its ods_code {rules.ods_code!r}"
                )
            table[_key(key)] = rules
        self._sites = table

    def rules_for(self, ods_code: str) -> SiteRules:
        configured = self._sites.get(_key(ods_code))
        if configured is not None:
            return configured
        return SiteRules(ods_code=ods_code, name=ods_code)

    def is_configured(self, ods_code: str) -> bool:
        return _key(ods_code) in self._sites

    def __iter__(self) -> Iterator[SiteRules]:
        return iter(self._sites.values())

    def __len__(self) -> int:
        return len(self._sites)

    def __repr__(self) -> str:
        return f"SiteDirectory({sorted(self._sites)})"


_SITE_KEYS = frozenset(
    {
        "name",
        "min_age",
        "max_age",
        "valueset_version",
        "assume_emergency_when_unknown",
        "mllp",
        "feed_silence",
        "alerts",
        "programme",
    }
)  # `mllp` (who may send as the site, where its ACKs go) is read by adapters.hl7.senders,
# `feed_silence` (how long its feeds may be quiet) by domain.feed_silence, `alerts` (the site
# team's chat webhook) by domain.alerts.site_webhooks, `programme` (the key its monthly push
# is signed with) by domain.programme_keys


def parse_site_config(
    data: Mapping[str, Any], *, known_valueset_versions: Collection[str] | None = None
) -> SiteDirectory:
    """Build a SiteDirectory from the `[sites.*]` tables of a loaded TOML document.

    Other top-level tables are ignored (they belong to other parts of the configuration).
    When `known_valueset_versions` is given, a pinned `valueset_version` must be one of them.
    Raises SiteConfigError naming the bad key.
    """
    sites = data.get("sites", {})
    if not isinstance(sites, Mapping):
        raise SiteConfigError("sites: expected a table of [sites.<ODS code>] tables")
    directory: dict[str, SiteRules] = {}
    for raw_code, table in sites.items():
        code = str(raw_code).strip().upper()
        where = f"sites.{raw_code}"
        if not _ODS_CODE.match(code):
            raise SiteConfigError(
                f"{where}: {raw_code!r} is not an ODS code (3-12 letters or digits)"
            )
        if code in directory:
            raise SiteConfigError(f"{where}: site {code} is configured twice")
        if not isinstance(table, Mapping):
            raise SiteConfigError(f"{where}: expected a table, got {type(table).__name__}")
        directory[code] = _parse_site(code, where, table, known_valueset_versions)
    return SiteDirectory(directory)


def _parse_site(
    code: str,
    where: str,
    table: Mapping[str, Any],
    known_versions: Collection[str] | None,
) -> SiteRules:
    unknown = sorted(set(table) - _SITE_KEYS)
    if unknown:
        raise SiteConfigError(
            f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(_SITE_KEYS))})"
        )
    name = table.get("name", code)
    if not isinstance(name, str) or not name.strip():
        raise SiteConfigError(f"{where}.name: expected a non-empty string")
    defaults = SiteRules(ods_code=code, name=name)
    min_age = _age(table, "min_age", where, defaults.min_age)
    max_age = _age(table, "max_age", where, defaults.max_age)
    if min_age > max_age:
        raise SiteConfigError(f"{where}.min_age: {min_age} is greater than max_age {max_age}")
    version = table.get("valueset_version")
    if version is not None:
        if not isinstance(version, str) or not version.strip():
            raise SiteConfigError(f"{where}.valueset_version: expected a version string")
        if known_versions is not None and version not in known_versions:
            raise SiteConfigError(
                f"{where}.valueset_version: {version!r} is not a known value-set version "
                f"(known: {', '.join(sorted(known_versions)) or 'none'})"
            )
    assume = table.get("assume_emergency_when_unknown", defaults.assume_emergency_when_unknown)
    if not isinstance(assume, bool):
        raise SiteConfigError(f"{where}.assume_emergency_when_unknown: expected true or false")
    return SiteRules(
        ods_code=code,
        name=name.strip(),
        min_age=min_age,
        max_age=max_age,
        valueset_version=version,
        assume_emergency_when_unknown=assume,
    )


def _age(table: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SiteConfigError(f"{where}.{key}: expected a whole number of years")
    if not 0 <= value <= MAX_PLAUSIBLE_AGE:
        raise SiteConfigError(f"{where}.{key}: {value} is outside 0-{MAX_PLAUSIBLE_AGE}")
    return value


def _key(ods_code: str) -> str:
    return ods_code.strip().upper()
