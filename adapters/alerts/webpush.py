"""Web Push (RFC 8030, payload encrypted per RFC 8291, VAPID per RFC 8292) with `pywebpush`.

The VAPID key pair is made on first start and kept in a PEM file beside the key ring
(`vapid_keys`); browsers get its public half (`application_server_key`) when a worker turns
alerts on for a device."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from referral_gateway.domain.alerts import Alert
from referral_gateway.services.errors import DeliveryFailed
from referral_gateway.storage.alerts import PushSubscription

from .payload import alert_bytes

GONE = (404, 410)  # the push service forgot the subscription


def vapid_keys(path: Path) -> Vapid02:
    """The gateway's VAPID key pair from `path`, made (mode 0600) if the file is missing."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return Vapid02.from_file(str(path))


def application_server_key(vapid: Vapid02) -> str:
    """The public key as browsers take it (`applicationServerKey`): base64url, no padding."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class WebPushSender:
    def __init__(
        self, vapid: Vapid02, *, subject: str, base_url: str, timeout: float = 10.0
    ) -> None:
        self.vapid = vapid
        self.subject = subject
        self.base_url = base_url
        self.timeout = timeout

    def __call__(self, alert: Alert, subscription: PushSubscription) -> None:
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            webpush(
                info,
                data=alert_bytes(alert, self.base_url).decode("utf-8"),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                timeout=self.timeout,
                ttl=3600,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            raise DeliveryFailed(f"push HTTP {status}", permanent=status in GONE) from None
        except Exception as exc:
            raise DeliveryFailed(f"push {type(exc).__name__}") from None
