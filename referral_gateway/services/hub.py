"""Programme hub: receive signed monthly reports from many sites, keep them, total them.

Keys live in a TOML file (RG_HUB_KEYS_FILE), one table per site key, and the sites expected
to report each month (optional: without it, every site that has a key is expected):

    expected_sites = ["RJ122", "RXA01", "RXB02"]

    [[key]]
    id = "rj122-2025"          # sent by the site as X-Report-Key-Id
    site = "RJ122"             # the only site this key may report for
    secret = "…at least 32 characters, shared with that site only…"

A request is refused (a value, with an HTTP status) when its signature is bad or stale
(401), its envelope is malformed or its checksum does not match (400), its key belongs to
another site (403), the report id was received before (409 replay; 409 conflict if the
content differs), or the hub already holds a report for the site and month and this one
gives no reason (409 `month_already_received`: a staging gateway cannot overwrite the
programme's figures). A report with a reason for a month already held is a correction: the
next version, kept beside the earlier ones (`ReportStore.receipt_history`).

What it is sent is checked as the sites check what they send (422, naming the rule, never a
figure): the month must have ended (London time, by the hub's clock: `month_not_ended`),
and the "controlled" figures must pass the disclosure rules the sites publish by
(`disclosure_control`, with the rule: `small_number`, `unrounded`, `recoverable`,
`rate_not_from_shown_figures`; see `domain.report_published.disclosure_breach`).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from referral_gateway.domain.clock import Clock
from referral_gateway.domain.report_period import latest_finished_month
from referral_gateway.domain.report_published import disclosure_breach
from referral_gateway.domain.report_snapshot import ReportSnapshot, read_envelope
from referral_gateway.report_formats.signing import (
    DEFAULT_WINDOW_S,
    SigningKey,
    SigningKeyError,
    Verified,
    verify,
)
from referral_gateway.services.errors import HubConfigError
from referral_gateway.storage.errors import VersionRace
from referral_gateway.storage.reports import ReceiptOutcome, ReportStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubKey:
    key: SigningKey
    site: str


@dataclass(frozen=True)
class HubConfig:
    keys: dict[str, HubKey]
    expected_sites: tuple[str, ...]  # the dashboard shows those without a month's report


def load_hub_config(path: Path) -> HubConfig:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise HubConfigError(f"hub keys file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise HubConfigError(f"hub keys file {path} is not valid TOML: {exc}") from None
    keys: dict[str, HubKey] = {}
    for i, entry in enumerate(data.get("key", [])):
        key_id, site, secret = entry.get("id"), entry.get("site"), entry.get("secret")
        if not all(isinstance(v, str) and v for v in (key_id, site, secret)):
            raise HubConfigError(f"key #{i + 1} in {path} needs id, site and secret")
        assert isinstance(key_id, str) and isinstance(site, str) and isinstance(secret, str)
        if key_id in keys:
            raise HubConfigError(f"key id {key_id!r} appears twice in {path}")
        try:
            keys[key_id] = HubKey(SigningKey(key_id, secret.encode("utf-8")), site)
        except SigningKeyError as exc:
            raise HubConfigError(str(exc)) from None
    if not keys:
        raise HubConfigError(f"hub keys file {path} has no [[key]] entries")
    return HubConfig(keys, _expected_sites(data, keys, path))


def _expected_sites(
    data: dict[str, Any], keys: Mapping[str, HubKey], path: Path
) -> tuple[str, ...]:
    listed = data.get("expected_sites")
    if listed is None:
        return tuple(sorted({k.site for k in keys.values()}))
    if not isinstance(listed, list) or not all(
        isinstance(v, str) and 0 < len(v) <= 40 for v in listed
    ):
        raise HubConfigError(f"expected_sites in {path} must be a list of ODS codes")
    if len(set(listed)) != len(listed):
        raise HubConfigError(f"expected_sites in {path} names a site twice")
    return tuple(listed)


@dataclass(frozen=True)
class HubAnswer:
    status_code: int
    body: dict[str, Any]


class HubReceiver:
    def __init__(
        self,
        store: ReportStore,
        keys: Mapping[str, HubKey],
        clock: Clock,
        *,
        window_s: int = DEFAULT_WINDOW_S,
    ) -> None:
        self.store = store
        self.keys = dict(keys)
        self.clock = clock
        self.window_s = window_s

    def receive(self, headers: Mapping[str, str], body: bytes) -> HubAnswer:
        now = self.clock()
        signing = {k: hk.key for k, hk in self.keys.items()}
        verdict = verify(headers, body, signing, now=now, window_s=self.window_s)
        if not isinstance(verdict, Verified):
            return self._refuse(401, verdict.reason)
        snapshot = read_envelope(body)
        if not isinstance(snapshot, ReportSnapshot):
            return self._refuse(400, snapshot.reason, verdict.key_id)
        if snapshot.site != self.keys[verdict.key_id].site:
            return self._refuse(403, "site_not_allowed_for_key", verdict.key_id)
        if snapshot.month > latest_finished_month(now):
            return self._refuse(422, "month_not_ended", verdict.key_id)
        breach = disclosure_breach(snapshot.report())
        if breach is not None:
            answer = self._refuse(422, "disclosure_control", verdict.key_id, rule=breach.rule)
            answer.body["figures"] = list(breach.cells[:20])  # names only, never values
            return answer
        try:
            result = self.store.receive(snapshot, key_id=verdict.key_id, now=now)
        except VersionRace:  # other versions of the month kept arriving: the site retries
            log.warning("hub: report %s %s met a concurrent version", snapshot.site, snapshot.month)
            return HubAnswer(503, {"outcome": "busy", "reason": "concurrent_version"})
        if result.outcome is ReceiptOutcome.ALREADY_HELD:
            return self._refuse(409, result.outcome.value, verdict.key_id)
        body_out: dict[str, Any] = {
            "outcome": result.outcome.value,
            "report_id": snapshot.report_id,
            "checksum": snapshot.checksum,
        }
        if result.outcome is ReceiptOutcome.ACCEPTED:
            body_out["version"] = result.version
            log.info(
                "hub: report %s %s accepted as version %s (key %s)",
                snapshot.site,
                snapshot.month,
                result.version,
                verdict.key_id,
            )
            return HubAnswer(202, body_out)
        log.warning(
            "hub: report %s %s refused as %s", snapshot.site, snapshot.month, result.outcome.value
        )
        return HubAnswer(409, body_out)

    def _refuse(
        self, status: int, reason: str, key_id: str | None = None, *, rule: str = ""
    ) -> HubAnswer:
        log.warning(
            "hub: push refused (%s%s, key %s)", reason, f" {rule}" if rule else "", key_id or "?"
        )
        body: dict[str, Any] = {"outcome": "refused", "reason": reason}
        if rule:
            body["rule"] = rule
        return HubAnswer(status, body)
