"""The MLLP listener, built from settings on a built gateway: TLS when `RG_MLLP_TLS_CERT` is
set, the connection limits, and the HL7 intake on the gateway's group-commit writer, with
the processing watch for application ACKs. `serve` starts and stops it."""

from __future__ import annotations

import ssl

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.mllp import MllpLimits, MllpServer
from referral_gateway.config import Settings
from referral_gateway.wiring.gateway import Gateway


def build_mllp_server(settings: Settings, gateway: Gateway) -> MllpServer:
    tls = None
    if settings.mllp_tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key or None)
    hl7 = Hl7Intake(gateway.intake, gateway.clock, watch=gateway.watch)
    mllp = MllpServer(
        hl7,
        host=settings.mllp_host,
        port=settings.mllp_port,
        limits=MllpLimits(
            max_connections=settings.mllp_max_connections,
            idle_timeout_s=settings.mllp_idle_timeout,
            max_frame_bytes=settings.mllp_max_frame_bytes,
        ),
        ssl_context=tls,
        on_oversize=hl7.oversize_reply,
    )
    return mllp
