"""The team-chat webhook: the alert as a JSON POST. With a secret, the request is signed the
way every signed request from the gateway is (`report_formats.signing.signature`):

    X-Gateway-Timestamp:  seconds since the Unix epoch when it was signed
    X-Gateway-Signature:  "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))

The receiver computes the same over the timestamp and the exact body bytes, compares in
constant time, and refuses a timestamp more than a few minutes from its clock (a replay)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from referral_gateway.domain.alerts import Alert
from referral_gateway.domain.clock import Clock, system_clock
from referral_gateway.report_formats.signing import signature
from referral_gateway.services.errors import DeliveryFailed

from .payload import alert_bytes

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"


class WebhookSender:
    """POSTs to the site's own URL when the site file gives one, else to the default."""

    def __init__(
        self,
        *,
        url: str,
        secret: str = "",
        site_urls: Mapping[str, str] | None = None,
        base_url: str,
        timeout: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        self.url = url
        self._secret = secret
        self.site_urls = dict(site_urls or {})
        self.base_url = base_url
        self.clock = clock
        self.client = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"WebhookSender(sites={sorted(self.site_urls)})"

    def has_room(self, site: str) -> bool:
        return bool(self.site_urls.get(site) or self.url)

    def __call__(self, alert: Alert) -> None:
        url = self.site_urls.get(alert.site) or self.url
        if not url:
            raise DeliveryFailed("no webhook for the site", permanent=True)
        body = alert_bytes(alert, self.base_url)
        headers = {"Content-Type": "application/json"}
        if self._secret:
            timestamp = int(self.clock().timestamp())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = signature(self._secret.encode("utf-8"), timestamp, body)
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"webhook HTTP {response.status_code}")

    def close(self) -> None:
        self.client.close()
