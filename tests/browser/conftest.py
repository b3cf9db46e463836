"""The real gateway (storage, intake, pipeline, MLLP listener, HTTP via uvicorn) in-process on
free ports, and Debian's Chromium driven by Playwright. Never `playwright install`.

Every document the `phone` loads from the gateway is checked with axe-core as it loads
(WCAG A/AA; `tests/browser/axe.py`): a serious or critical violation on any of them fails
the test, naming the page, even when the test itself never asked."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consent.policy import Role
from referral_gateway.web.context import WebContext
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.reports import Reports, build_reports
from referral_gateway.wiring.web import build_app
from tests.browser.axe import BLOCKING, axe_violations
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
    reports: Reports

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def mllp_port(self) -> int:
        return self.running.port


def start_stack(tmp_path: Path, database_url: str, **web: object) -> Stack:
    """The gateway on free ports (with its report pages, as `serve` has them) with youth
    worker "ash" of SITE; `web` overrides the pages' options."""
    running = start_gateway(tmp_path, database_url)
    options: dict[str, object] = {
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "heartbeat_seconds": 2.0,
        "prune_seconds": 3600.0,
    }
    gateway = running.gateway
    reports = build_reports(gateway.settings, gateway.engine, gateway.clock)
    app = build_app(
        gateway,
        reports=reports,
        web=WebOptions(**(options | web)),  # type: ignore[arg-type]
    )
    http = LiveServer(app).start()
    ctx: WebContext = app.state.web
    add_account(
        ctx.accounts,
        "ash",
        Role.YOUTH_WORKER,
        (SITE,),
        display_name="Ash",
        now=running.gateway.clock(),
    )
    return Stack(running, http, ctx, reports)


@pytest.fixture
def stack(tmp_path, sqlite_url) -> Iterator[Stack]:
    started = start_stack(tmp_path, sqlite_url)
    try:
        yield started
    finally:
        started.http.stop()
        started.running.stop()


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
    checked = AxeOnEveryPage(page)
    yield page
    checked.finish(page)
    context.close()
    checked.assert_accessible()


class AxeOnEveryPage:
    """Runs axe on each document `page` loads over http (not `set_content` pages), as it
    loads. A check that the test outran (it went to the next page before axe finished) is
    done again at the end by opening that address once more."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.pages: list[str] = []
        self.failures: list[str] = []
        self.missed: list[str] = []
        self.running = 0
        page.on("load", self._check)

    def _check(self, page) -> None:  # type: ignore[no-untyped-def]
        from playwright.sync_api import Error

        url = page.url
        if not url.startswith("http"):
            return
        self.running += 1
        try:
            found = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
        except Error:  # the test moved on to the next page before axe finished
            self.missed.append(url)
            return
        finally:
            self.running -= 1
        self.pages.append(url)
        self.failures += [
            f"{url}: {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}"
            for v in found
        ]

    def finish(self, page) -> None:  # type: ignore[no-untyped-def]
        """Let the checks under way end, and check again the pages the test outran."""
        from playwright.sync_api import Error

        self._settle(page)
        for url in dict.fromkeys(self.missed):
            if url in self.pages:
                continue
            with contextlib.suppress(Error):
                page.goto(url)
                self._settle(page)

    def _settle(self, page) -> None:  # type: ignore[no-untyped-def]
        from playwright.sync_api import Error

        with contextlib.suppress(Error):
            page.evaluate("0")  # a load that has just happened starts its check
            for _ in range(600):  # each wait lets the checks under way go on
                if not self.running:
                    break
                page.wait_for_timeout(50)

    def assert_accessible(self) -> None:
        assert not self.failures, "axe on the pages visited:\n" + "\n".join(self.failures)


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
