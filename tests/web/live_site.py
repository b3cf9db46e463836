"""The whole app (gateway, reports, pages) on a real HTTP server with an ED feeding it, and
browsers signed in to it: for tests that ask as a browser does, from outside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx

from consent.policy import Role
from referral_gateway.config import Settings
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.reports import build_reports
from referral_gateway.wiring.web import build_app
from tests.conftest import FixedClock
from tests.web.builders import FakeEd
from tests.web.conftest import Web, web_options
from tests.web.live import LiveServer


class Site:
    """The whole app on a real HTTP server, with an ED feeding it."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str = "",
        *,
        ops_token: str | None = None,
        hub_keys_file: str = "",
    ) -> None:
        self.clock = FixedClock()
        settings = Settings(
            data_dir=data_dir, database_url=database_url, hub_keys_file=hub_keys_file
        )
        # not started: the FakeEd below drives the pipeline itself, message by message, and
        # the gateway's own worker would race it for each message (on PostgreSQL it sometimes
        # won, and the ED's `stab_wound` found no new referral); alerts run as in `serve`
        self.running = build_gateway(settings, clock=self.clock)
        self.running.alerts.start()
        app = build_app(
            self.running,
            ops_token=ops_token,
            reports=build_reports(settings, self.running.engine, self.clock),
            web=web_options(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1),
        )
        ed = FakeEd(
            self.running.engine, self.running.keyring, self.clock, on_referral=self.running.announce
        )
        self.web = Web(app, app.state.web, ed, self.clock)
        self.live = LiveServer(app).start()

    def browser(self, username: str, role: Role, sites: tuple[str, ...]) -> httpx.Client:
        """A signed-in browser: its session cookie over real HTTP, asking for HTML."""
        self.web.account(username, role, sites)
        signed_in = self.web.signed_in(username)
        cookies = "; ".join(f"{c.name}={c.value}" for c in signed_in.cookies.jar)
        return httpx.Client(
            base_url=self.live.url, timeout=10, headers={"Accept": "text/html", "Cookie": cookies}
        )

    def stop(self) -> None:
        self.live.stop()
        self.running.alerts.stop()
        self.running.stop()


def running_site(data_dir: Path, database_url: str = "") -> Iterator[Site]:
    """For a test's fixture: the site running until the test ends (on SQLite under
    `data_dir` unless a `database_url` is given)."""
    s = Site(data_dir, database_url)
    try:
        yield s
    finally:
        s.stop()
