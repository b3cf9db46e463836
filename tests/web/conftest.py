"""The web app built on a bare FastAPI app with the real stores on SQLite, a fixed clock, a
fast password hasher and an ED that feeds the real pipeline."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consent.policy import Role
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.referral import ReferralNews
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import assigned_to
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.web.context import WebContext
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.web import install_web
from tests.web.builders import FAST_HASHER, PASSWORD, SITE_A, FakeEd, add_account

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@dataclass
class Web:
    app: FastAPI
    ctx: WebContext
    ed: FakeEd
    clock: Callable
    listeners: list = field(default_factory=list)

    def account(
        self, username: str, role: Role = Role.YOUTH_WORKER, sites: tuple[str, ...] = (SITE_A,)
    ) -> StaffUser:
        return add_account(self.ctx.accounts, username, role, sites, now=self.clock())

    def client(self, **kwargs: object) -> TestClient:
        return TestClient(self.app, **kwargs)  # type: ignore[arg-type]

    def signed_in(self, username: str, **kwargs: object) -> TestClient:
        client = self.client(**kwargs)
        page = client.get("/sign-in")
        reply = client.post(
            "/sign-in",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert reply.status_code == 303, reply.text
        return client

    def token(self, client: TestClient, page: str = "/") -> str:
        return csrf_of(client.get(page).text)


def web_options(**overrides: object) -> WebOptions:
    values: dict[str, object] = {"prune_seconds": 3600.0, "heartbeat_seconds": 0.5}
    values.update(overrides)
    return WebOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def web_engine(sqlite_url):
    engine = make_engine(sqlite_url)
    migrate(engine)
    yield engine
    engine.dispose()


def build_web(engine, keyring, clock, **options: object) -> Web:  # type: ignore[no-untyped-def]
    app = FastAPI()
    listeners: list = []
    sharing = Sharing(engine, keyring, AuditStore(), assignments=assigned_to)
    ctx = install_web(
        app,
        engine=engine,
        keyring=keyring,
        clock=clock,
        listeners=listeners,
        sharing=sharing,
        options=web_options(**options),
        hasher=FAST_HASHER,
    )

    def announce(news: ReferralNews) -> None:
        for listener in listeners:
            listener(news)

    ed = FakeEd(engine, keyring, clock, on_referral=announce)
    return Web(app, ctx, ed, clock, listeners)


@pytest.fixture
def web(web_engine, keyring, clock) -> Iterator[Web]:
    yield build_web(web_engine, keyring, clock)
