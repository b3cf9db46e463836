"""Onward referrals as a signed JSON webhook: what a service without a FHIR server receives.

    POST <endpoint>
    Content-Type: application/json
    Idempotency-Key:       <task id>:deliver   (or :cancel) — the same on every retry
    X-Referral-Key-Id:     the key id the service was given
    X-Referral-Timestamp:  seconds since the Unix epoch when it was signed
    X-Referral-Signature:  "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))

The body (`webhook_body`): `type` (`referral` or `cancellation`), `task_id` (the FHIR Task
id to answer on), `referral_id`, `site` (the referring ED's ODS code), `service` (its code),
`requested_at`, `fields` (only those the service may receive) and, for a cancellation,
`reason`. The signature is the one the monthly report push uses
(`report_formats.signing.signature`). A receiver should refuse a timestamp more than
`REPLAY_WINDOW_S` (5 minutes) from its clock and treat a second request with an
Idempotency-Key it has seen as a repeat (answer 2xx, do nothing).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from referral_gateway.domain.clock import Clock, system_clock
from referral_gateway.report_formats.signing import SigningKey, signature
from referral_gateway.services.onward import OutgoingMessage, SendResult
from referral_gateway.storage.onward import OutboxKind

KEY_ID_HEADER = "X-Referral-Key-Id"
TIMESTAMP_HEADER = "X-Referral-Timestamp"
SIGNATURE_HEADER = "X-Referral-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_WINDOW_S = 300


def webhook_body(message: OutgoingMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "referral" if message.kind is OutboxKind.DELIVER else "cancellation",
        "task_id": message.task_id,
        "referral_id": message.referral_id,
        "site": message.site,
        "service": message.service.code,
        "requested_at": message.requested_at.astimezone(UTC).isoformat(),
        "fields": dict(message.values),
    }
    if message.kind is OutboxKind.CANCEL:
        body["reason"] = message.reason or "cancelled by the referrer"
    return body


def signed_request(message: OutgoingMessage, *, now: datetime) -> tuple[bytes, dict[str, str]]:
    if not message.secret or not message.service.key_id:
        raise ValueError("a webhook service needs a key id and a secret")
    key = SigningKey(message.service.key_id, message.secret.encode("utf-8"))
    body = json.dumps(webhook_body(message), separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    return body, {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: message.idempotency_key,
        KEY_ID_HEADER: key.key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key.secret, timestamp, body),
    }


def send_webhook(
    message: OutgoingMessage, *, clock: Clock = system_clock, timeout: float = 10.0
) -> SendResult:
    assert message.service.endpoint is not None
    try:
        body, headers = signed_request(message, now=clock())
    except ValueError as exc:  # misconfigured: retrying will not help
        return SendResult(False, False, type(exc).__name__)
    try:
        response = httpx.post(
            message.service.endpoint, content=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        return SendResult(False, True, type(exc).__name__)
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(True, False, str(status))
    return SendResult(False, status in (408, 425, 429) or status >= 500, f"HTTP {status}")
