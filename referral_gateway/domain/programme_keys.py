"""Which key signs each site's monthly push: `[sites.<ODS>.programme]` in the site file.

The programme hub gives every site a key of its own (a key may report for one site only),
so a gateway serving several sites signs each site's month with that site's key:

    [sites.RXX01.programme]
    key_id = "rxx01-2026"                                   # as the hub knows it
    key_file = "/etc/referral-gateway/programme-rxx01.key"  # the shared secret, 32+ characters

A relative `key_file` is read from the site file's folder. A site without a table signs with
the gateway's default key (RG_PROGRAMME_KEY_ID and RG_PROGRAMME_SECRET), which is all a
gateway serving one site needs. This module reads the tables; reading the files is wiring's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from referral_gateway.domain.errors import SiteConfigError

_KEYS = frozenset({"key_id", "key_file"})


@dataclass(frozen=True, slots=True)
class ProgrammeKeyRef:
    site: str
    key_id: str
    key_file: str


def programme_key_refs(data: Mapping[str, Any]) -> dict[str, ProgrammeKeyRef]:
    """The `[sites.<ODS>.programme]` tables of a loaded site file, by site (upper case).
    Raises SiteConfigError naming the bad key."""
    out: dict[str, ProgrammeKeyRef] = {}
    sites = data.get("sites", {})
    if not isinstance(sites, Mapping):
        return out
    key_ids: dict[str, str] = {}
    for code, table in sites.items():
        programme = table.get("programme") if isinstance(table, Mapping) else None
        if programme is None:
            continue
        where = f"sites.{code}.programme"
        if not isinstance(programme, Mapping):
            raise SiteConfigError(f"{where}: expected a table with key_id and key_file")
        unknown = sorted(set(programme) - _KEYS)
        if unknown:
            raise SiteConfigError(f"{where}.{unknown[0]}: unknown key (allowed: key_file, key_id)")
        key_id, key_file = programme.get("key_id"), programme.get("key_file")
        if not isinstance(key_id, str) or not 0 < len(key_id.strip()) <= 64:
            raise SiteConfigError(f"{where}.key_id: expected the key's id (1-64 characters)")
        if not isinstance(key_file, str) or not key_file.strip():
            raise SiteConfigError(f"{where}.key_file: expected the path of the secret's file")
        site = str(code).strip().upper()
        if key_id.strip() in key_ids:
            raise SiteConfigError(
                f"{where}.key_id: {key_id.strip()!r} is also site {key_ids[key_id.strip()]}'s key;"
                " the hub lets a key report for one site only"
            )
        key_ids[key_id.strip()] = site
        out[site] = ProgrammeKeyRef(site, key_id.strip(), key_file.strip())
    return out
