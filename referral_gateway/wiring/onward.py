"""Onward referrals, built: the sender that picks the channel, and the service."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from adapters.fhir.onward import send_fhir
from adapters.webhook import send_webhook
from consent.keyring import KeyRing
from referral_gateway.config import Settings
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.onward import Channel, RetryPolicy
from referral_gateway.services.onward import (
    Announce,
    OnwardReferrals,
    OutgoingMessage,
    Sender,
    SendResult,
)
from referral_gateway.services.sharing import Sharing


def onward_sender(clock: Clock) -> Sender:
    def send(message: OutgoingMessage) -> SendResult:
        if message.service.channel is Channel.FHIR:
            return send_fhir(message)
        if message.service.channel is Channel.WEBHOOK:
            return send_webhook(message, clock=clock)
        return SendResult(False, False, "manual service: nothing to send")

    return send


def build_onward(
    settings: Settings,
    engine: Engine,
    keyring: KeyRing,
    sharing: Sharing,
    clock: Clock,
    *,
    announce: Announce,
    sender: Sender | None = None,
) -> OnwardReferrals:
    """The onward referrals, with the withdrawal hook registered on `sharing`."""
    onward = OnwardReferrals(
        engine,
        keyring,
        sharing,
        sender=sender or onward_sender(clock),
        announce=announce,
        policy=RetryPolicy(
            base=timedelta(seconds=settings.outbox_backoff_seconds),
            max_attempts=settings.outbox_max_attempts,
        ),
    )
    sharing.on_withdrawal.append(onward.cancel_for_withdrawal)
    return onward
