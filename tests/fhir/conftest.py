"""Fixtures for the FHIR adapter: the resource store and writer on the shared `engine`
(SQLite, and PostgreSQL under the test command), an API token, and the /fhir routes on a
bare FastAPI app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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


@dataclass
class SourceServer:
    """The test FHIR server running in another process (tests/fhir/source_server.py)."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def _control(self, what: str, body: Any) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_control/{what}", json=body).raise_for_status()

    def add(self, *resources: dict[str, Any]) -> None:
        self._control("resources", list(resources))

    def fail(self, count: int, status: int = 500) -> None:
        self._control("fail", {"count": count, "status": status})

    def options(self, **options: Any) -> None:
        self._control("options", options)

    def requests(self) -> list[str]:
        return list(httpx.get(f"http://127.0.0.1:{self.port}/_control/requests").json())


def _start_source_server(*args: str) -> tuple[subprocess.Popen[bytes], SourceServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fhir.source_server", *args],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, SourceServer(port)


@pytest.fixture
def source_server() -> Iterator[SourceServer]:
    proc, server = _start_source_server()
    yield server
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def locked_source_server() -> Iterator[SourceServer]:
    """A source that wants `Authorization: Bearer source-secret`."""
    proc, server = _start_source_server("--token", "source-secret")
    yield server
    proc.terminate()
    proc.wait(10)
