"""Fixtures for the FHIR adapter: a migrated SQLite database, the resource store and writer,
an API token, and the /fhir routes on a bare FastAPI app (no detection needed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.routes import fhir_router
from adapters.fhir.writer import FhirWriter
from consent.keyring import KeyRing
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.fhir_store import ApiClientStore, FhirResourceStore
from tests.fhir.builders import SITE


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime = datetime(2025, 3, 1, 21, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}", sqlite_synchronous="NORMAL")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def store(engine: Engine, keyring: KeyRing) -> FhirResourceStore:
    return FhirResourceStore(engine, keyring)


@pytest.fixture
def writer(store: FhirResourceStore, clock: Clock) -> Iterator[FhirWriter]:
    writer = FhirWriter(store, clock).start()
    yield writer
    writer.stop()


@pytest.fixture
def clients(engine: Engine) -> ApiClientStore:
    return ApiClientStore(engine)


@pytest.fixture
def token(clients: ApiClientStore, clock: Clock) -> str:
    _, token = clients.create(name="rxx-ed-epr", site=SITE, now=clock())
    return token


@pytest.fixture
def app(writer: FhirWriter, clients: ApiClientStore, clock: Clock) -> FastAPI:
    app = FastAPI()
    app.include_router(
        fhir_router(
            writer=writer,
            authenticate=TokenAuthenticator(clients, cache_seconds=0),
            clock=clock,
        )
    )
    return app


@pytest.fixture
def http(app: FastAPI, token: str) -> Iterator[TestClient]:
    with TestClient(
        app, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    ) as client:
        yield client
