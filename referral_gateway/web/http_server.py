"""How `serve` runs the app over HTTP (uvicorn), in one place so tests run it the same way.

Who a request is from: the socket's peer, unless that peer is one of the reverse proxies
listed in `RG_TRUSTED_PROXIES`; only then are its `X-Forwarded-For` (the client address the
sign-in limiter counts failures against) and `X-Forwarded-Proto` (Secure cookies) believed.
With none listed (the default) no forwarded header is believed, so a client cannot pick the
address its failed sign-ins are counted against.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from referral_gateway.config import Settings


def http_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    proxies = settings.trusted_proxy_networks
    values: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_level": "warning",
        "log_config": None,  # uvicorn's lines go through our handler (RG_LOG_FORMAT)
        "timeout_graceful_shutdown": 3,  # open live-queue streams never end alone
        "proxy_headers": bool(proxies),
        # uvicorn's own default (FORWARDED_ALLOW_IPS, else 127.0.0.1) is never used
        "forwarded_allow_ips": list(proxies) if proxies else [],
    }
    values.update(overrides)
    return uvicorn.Config(app, **values)
