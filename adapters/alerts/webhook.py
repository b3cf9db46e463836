"""The team-chat webhook: the alert as a JSON POST. With a secret, the body is signed with
HMAC-SHA256 and the hex digest sent as `X-Gateway-Signature: sha256=<hex>` (the receiver
computes the same over the exact body bytes and compares in constant time)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import httpx

from referral_gateway.domain.alerts import Alert
from referral_gateway.services.errors import DeliveryFailed

from .payload import alert_bytes

SIGNATURE_HEADER = "X-Gateway-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


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
    ) -> None:
        self.url = url
        self._secret = secret
        self.site_urls = dict(site_urls or {})
        self.base_url = base_url
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
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"webhook HTTP {response.status_code}")

    def close(self) -> None:
        self.client.close()
