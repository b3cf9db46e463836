"""Schemathesis over the app's own OpenAPI schema (FHIR, operations, reports, hub): requests
generated from the schema, sent in-process to the whole app as `serve` builds it, each with
the credentials its route takes. No answer is a 500, and every answer conforms to what the
schema says of it.

Bounded: 25 examples per operation in the suite (RG_HYPOTHESIS_PROFILE=explore: 500).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consent.policy import Role
from referral_gateway.config import Settings
from referral_gateway.storage.fhir_store import ApiClientStore
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.reports import build_reports
from referral_gateway.wiring.web import build_app
from tests.conftest import FixedClock
from tests.web.builders import SITE_A, SITE_B
from tests.web.conftest import Web, web_options

OPS_TOKEN = "ops-token-for-the-fuzzer"
HUB_SECRET = "hub-secret-for-the-fuzzer-0123456789abcdef"


class Credentials:
    def __init__(self) -> None:
        self.fhir = ""
        self.session = ""

    def for_path(self, path: str) -> dict[str, str]:
        if path.startswith("/fhir"):
            return {"Authorization": f"Bearer {self.fhir}"}
        if path.startswith(("/api/ops/", "/reports/download")):
            return {"Authorization": f"Bearer {OPS_TOKEN}"}
        if path.startswith(("/reports", "/hub")):
            return {"Cookie": self.session}
        return {}


CREDENTIALS = Credentials()
# per operation: 25 in the suite (about 6 s in all); the explore profile searches longer
EXAMPLES = 25 if os.environ.get("RG_HYPOTHESIS_PROFILE", "suite") == "suite" else 500
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory) -> Iterator[schemathesis.BaseSchema]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    keys = data_dir / "hub-keys.toml"
    keys.write_text(f'[[key]]\nid = "k-a"\nsite = "{SITE_A}"\nsecret = "{HUB_SECRET}"\n')
    settings_ = Settings(data_dir=data_dir, hub_keys_file=str(keys))
    clock = FixedClock()
    gateway = build_gateway(settings_, clock=clock).start()
    app = build_app(
        gateway,
        ops_token=OPS_TOKEN,
        reports=build_reports(settings_, gateway.engine, clock),
        web=web_options(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1),
    )
    web = Web(app, app.state.web, None, clock)  # type: ignore[arg-type]
    web.account("lead", Role.PROGRAMME_LEAD, (SITE_A, SITE_B))
    client = web.signed_in("lead")
    cookie = next(iter(client.cookies.jar))
    CREDENTIALS.session = f"{cookie.name}={cookie.value}"
    _, CREDENTIALS.fhir = ApiClientStore(gateway.engine).create(
        name="fuzz-epr", site=SITE_A, now=clock()
    )
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        gateway.stop()


def test_no_operation_answers_500_or_outside_its_schema(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 15  # the whole app's schema: FHIR, operations, reports, hub
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))
        def exchange(case) -> None:
            response = case.call(headers=CREDENTIALS.for_path(case.path))
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: 500"
            case.validate_response(response, checks=CHECKS)

        try:
            exchange()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, not one
            failures[operation.label] = str(exc)[:1500]
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
