"""Fixtures for the FHIR adapter: the resource store and writer on the shared `engine`
(SQLite, and PostgreSQL under the test command), an API token, and the /fhir routes on a
bare FastAPI app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.routes import fhir_router
from adapters.fhir.writer import FhirWriter
from consent.keyring import KeyRing
from referral_gateway.storage.fhir_store import ApiClientStore, FhirResourceStore
from tests.conftest import FixedClock
from tests.fhir.builders import SITE


@pytest.fixture
def store(engine: Engine, keyring: KeyRing) -> FhirResourceStore:
    return FhirResourceStore(engine, keyring)


@pytest.fixture
def writer(store: FhirResourceStore, clock: FixedClock) -> Iterator[FhirWriter]:
    writer = FhirWriter(store, clock).start()
    yield writer
    writer.stop()


@pytest.fixture
def clients(engine: Engine) -> ApiClientStore:
    return ApiClientStore(engine)


@pytest.fixture
def token(clients: ApiClientStore, clock: FixedClock) -> str:
    _, token = clients.create(name="rxx-ed-epr", site=SITE, now=clock())
    return token


@pytest.fixture
def app(writer: FhirWriter, clients: ApiClientStore, clock: FixedClock) -> FastAPI:
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
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with TestClient(app, headers=headers) as client:
        yield client
