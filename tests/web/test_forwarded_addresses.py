"""Who the sign-in limiter counts a failure against, over a real socket with the HTTP
server configured as `serve` configures it: the socket's peer, unless that peer is a
reverse proxy listed in RG_TRUSTED_PROXIES."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from referral_gateway.config import ConfigError, Settings
from referral_gateway.web.http_server import http_config
from tests.web.conftest import Web, build_web, csrf_of

LIMIT = 3  # failed sign-ins per client address within the window


def serve(web: Web, settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(http_config(web.app, settings, port=0, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def failed_sign_ins(url: str, forwarded_for: list[str]) -> list[int]:
    """One failed sign-in per entry, each under a new username, claiming that address."""
    statuses = []
    for n, address in enumerate(forwarded_for):
        with httpx.Client(base_url=url, headers={"X-Forwarded-For": address}) as client:
            token = csrf_of(client.get("/sign-in").text)
            reply = client.post(
                "/sign-in",
                data={"username": f"nobody{n}", "password": "wrong password", "csrf_token": token},
            )
            statuses.append(reply.status_code)
    return statuses


@pytest.fixture
def limited_web(web_engine, keyring, clock) -> Web:
    return build_web(web_engine, keyring, clock, sign_in_failures_per_address=LIMIT)


def test_without_trusted_proxies_a_client_cannot_dodge_the_limit_with_forwarded_for(
    limited_web: Web,
):
    server, thread, url = serve(limited_web, Settings(http_port=0))
    try:
        spoofed = [f"203.0.113.{n}" for n in range(1, LIMIT + 3)]
        statuses = failed_sign_ins(url, spoofed)
    finally:
        server.should_exit = True
        thread.join(10)
    # all counted against the socket's peer (127.0.0.1): refused once the limit is reached
    assert statuses[-1] == 429, statuses


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(limited_web: Web):
    settings = Settings(http_port=0, trusted_proxies="127.0.0.1, ::1")
    server, thread, url = serve(limited_web, settings)
    try:
        different = failed_sign_ins(url, [f"203.0.113.{n}" for n in range(1, LIMIT + 3)])
        same = failed_sign_ins(url, ["198.51.100.7"] * (LIMIT + 1))
    finally:
        server.should_exit = True
        thread.join(10)
    assert 429 not in different, different
    assert same[-1] == 429, same


def test_a_malformed_trusted_proxy_list_is_refused_at_start():
    with pytest.raises(ConfigError, match="RG_TRUSTED_PROXIES"):
        Settings(trusted_proxies="127.0.0.1, nginx.local")
