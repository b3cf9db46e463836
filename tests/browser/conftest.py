"""The real gateway (storage, intake, pipeline, MLLP listener, HTTP via uvicorn) in-process on
free ports, and Debian's Chromium driven by Playwright. Never `playwright install`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consent.policy import Role
from referral_gateway.web.context import WebContext
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.web import build_app
from tests.spine.harness import RunningGateway, start_gateway
from tests.web.builders import PASSWORD, add_account
from tests.web.live import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SITE = "RXX01"


@dataclass
class Stack:
    running: RunningGateway
    http: LiveServer
    web: WebContext

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def mllp_port(self) -> int:
        return self.running.port


@pytest.fixture
def stack(tmp_path, sqlite_url) -> Iterator[Stack]:
    running = start_gateway(tmp_path, sqlite_url)
    app = build_app(
        running.gateway,
        web=WebOptions(
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            argon2_parallelism=1,
            heartbeat_seconds=2.0,
            prune_seconds=3600.0,
        ),
    )
    http = LiveServer(app).start()
    web: WebContext = app.state.web
    add_account(
        web.accounts,
        "ash",
        Role.YOUTH_WORKER,
        (SITE,),
        display_name="Ash",
        now=running.gateway.clock(),
    )
    try:
        yield Stack(running, http, web)
    finally:
        http.stop()
        running.stop()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: the test command installs it")
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def phone(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page, url: str, username: str = "ash") -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/queue")


def go_to(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Follow the header's navigation link `name`, through its "More" menu when the NHS.UK
    header has moved the link there (it does on a narrow screen)."""
    link = page.locator(".nhsuk-header__navigation").get_by_role("link", name=name, exact=True)
    if not link.is_visible():
        page.locator(".nhsuk-header__menu-toggle").click()
    link.click()
