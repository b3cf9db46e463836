"""What every channel sends: the alert's four values and its words, nothing else."""

from __future__ import annotations

import json

from referral_gateway.domain.alerts import ALERT_TITLE, Alert, alert_text


def alert_json(alert: Alert, base_url: str) -> dict[str, object]:
    return {
        "title": ALERT_TITLE,
        "body": alert_text(alert),
        "site": alert.site,
        "kind": alert.kind.value,
        "count": alert.count,
        "url": base_url.rstrip("/") + alert.link,
    }


def alert_bytes(alert: Alert, base_url: str) -> bytes:
    return json.dumps(alert_json(alert, base_url), separators=(",", ":")).encode("utf-8")
