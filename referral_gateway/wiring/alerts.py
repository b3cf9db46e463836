"""Alerts, wired: the channels the settings configure, the VAPID key pair beside the key ring
(made on first start), and the service that hears the gateway's referral news."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from adapters.alerts.smtp import EmailSender
from adapters.alerts.webhook import WebhookSender
from adapters.alerts.webpush import WebPushSender, application_server_key, vapid_keys
from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.alerts import RetryPolicy, site_webhooks
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.errors import SiteConfigError
from referral_gateway.services.alerts import Alerts, Senders
from referral_gateway.storage.alerts import AlertStore


def load_site_webhooks(config_file: str) -> dict[str, str]:
    if not config_file:
        return {}
    try:
        data = tomllib.loads(Path(config_file).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # the site configuration's own loader reports an unreadable file
    try:
        return site_webhooks(data)
    except SiteConfigError as exc:
        raise ConfigError(str(exc)) from None


def build_alerts(settings: Settings, engine: Engine, clock: Clock) -> tuple[Alerts, str]:
    """The alert service (not started) and the VAPID public key browsers subscribe with."""
    base = settings.resolved_public_url
    vapid = vapid_keys(settings.resolved_vapid_file)
    subject = settings.vapid_subject or (
        f"mailto:{settings.smtp_from}" if settings.smtp_from else f"{base}/alerts"
    )
    if not subject.startswith(("mailto:", "https:")):
        subject = "mailto:referral-gateway@localhost"
    email = None
    if settings.smtp_host:
        email = EmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from or "referral-gateway@localhost",
            base_url=base,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
        )
    rooms = load_site_webhooks(settings.config_file)
    chat = None
    if settings.alert_webhook_url or rooms:
        chat = WebhookSender(
            url=settings.alert_webhook_url,
            secret=settings.alert_webhook_secret,
            site_urls=rooms,
            base_url=base,
            clock=clock,
        )
    senders = Senders(
        push=WebPushSender(vapid, subject=subject, base_url=base),
        email=email,
        chat=chat,
        chat_sites=chat.has_room if chat is not None else (lambda _s: False),
    )
    alerts = Alerts(
        AlertStore(engine),
        senders,
        clock,
        batch_seconds=settings.alert_batch_seconds,
        retry=RetryPolicy(
            first=timedelta(seconds=settings.alert_retry_first_seconds),
            attempts=settings.alert_retry_attempts,
        ),
    )
    return alerts, application_server_key(vapid)
