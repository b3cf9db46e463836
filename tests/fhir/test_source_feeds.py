"""An ED whose only feed is FHIR: the whole gateway (configuration file, storage, pipeline,
detection, operations API) fed by a FHIR server running in another process
(tests/fhir/source_server.py) that ignores `_sort`, pages its answers and holds Conditions
and Observations apart from the Encounters they belong to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referral_gateway.config import Settings
from referral_gateway.storage.views import referral_summaries
from referral_gateway.wiring.gateway import Gateway, build_gateway
from referral_gateway.wiring.web import build_app
from tests.fhir import builders as b
from tests.fhir.builders import ICD10_X99, backport_notification

ADULT = "1980-01-01"


def source_config(path: Path, base_url: str, **settings: Any) -> Path:
    lines = [
        "[fhir.sources.rxx-epr]",
        f'base_url = "{base_url}"',
        'site = "RXX01"',
        "lookback_hours = 43800",  # the synthetic attendances are from 2025
        *(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_gateway(tmp_path, database_url, keyring, clock) -> Iterator[Any]:
    made: list[Gateway] = []

    def make(base_url: str, **settings: Any) -> Gateway:
        config = source_config(tmp_path / "gateway.toml", base_url, **settings)
        gw = build_gateway(
            Settings(data_dir=tmp_path, database_url=database_url, config_file=str(config)),
            keyring=keyring,
            clock=clock,
        )
        gw.intake.start()
        gw.fhir.start(poll=False)  # the tests run the polls and retries themselves
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.fhir.stop()
        gw.intake.stop()
        gw.stop()


def attendance(
    n: int,
    last_updated: str,
    *,
    birth_date: str = "2009-04-12",
    diagnosis: tuple[str, str, str] | None = ICD10_X99,
    intent: bool = False,
) -> list[dict[str, Any]]:
    """Patient p<n> and Encounter e<n> with no reason on the Encounter itself; the assault
    is coded only in a Condition c<n> (ICD-10 X99 unless told) and/or an injury intent
    Observation o<n>, which the source holds apart."""
    held = [
        b.at_source(
            b.patient(id=f"p{n}", nhs=b.nhs_number(n), birth_date=birth_date), last_updated
        ),
        b.at_source(
            b.encounter(
                id=f"e{n}",
                visit=f"ED-2025-{n:06d}",
                subject=f"Patient/p{n}",
                reasons=(),
                reason_text=None,
            ),
            last_updated,
        ),
    ]
    if diagnosis is not None:
        held.append(
            b.at_source(
                b.condition(
                    id=f"c{n}",
                    encounter_ref=f"Encounter/e{n}",
                    subject=f"Patient/p{n}",
                    code=diagnosis,
                ),
                last_updated,
            )
        )
    if intent:
        held.append(
            b.at_source(
                b.injury_intent(
                    id=f"o{n}", encounter_ref=f"Encounter/e{n}", subject=f"Patient/p{n}"
                ),
                last_updated,
            )
        )
    return held


OPS_TOKEN = "ops-token-for-source-feeds"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def referrals(gateway: Gateway) -> list[dict[str, Any]]:
    gateway.pipeline.drain()
    return referral_summaries(gateway.engine)


def referral_of_visit(gateway: Gateway, visit: str) -> str | None:
    """The referral of the attendance with this visit number (found by its blind index)."""
    with gateway.engine.connect() as conn:
        found = gateway.attendances.snapshot(conn, {("RXX01", visit)}).found
    stored = found.get(("RXX01", visit))
    return stored.referral_id if stored else None


def ops_client(gateway: Gateway) -> TestClient:
    return TestClient(build_app(gateway, ops_token=OPS_TOKEN), headers=OPS)


@pytest.mark.parametrize("revinclude", [False, True], ids=["search-per-page", "revinclude"])
def test_every_candidate_arrives_by_polling_with_its_coded_reason(
    source_server, make_gateway, clock, revinclude
):
    source_server.options(ignore_sort=True, revinclude=revinclude)
    # added newest first, so a source that ignores _sort serves the newest on page one
    source_server.add(
        *attendance(1, "2025-03-01T23:50:00Z"),
        *attendance(2, "2025-03-01T23:40:00Z", diagnosis=None, intent=True),
        *attendance(3, "2025-03-01T23:30:00Z", birth_date=ADULT),
        *attendance(4, "2025-03-01T23:20:00Z", diagnosis=None),  # no assault signal
        *attendance(5, "2025-03-01T23:10:00Z"),
        *attendance(6, "2025-03-01T23:00:00Z", intent=True),
        *attendance(7, "2025-03-01T22:50:00Z"),
    )
    gateway = make_gateway(source_server.base_url, page_size=2, max_pages=2)
    source = gateway.fhir.sources[0]
    runs = []
    for _ in range(4):
        runs.append(gateway.fhir.poller.poll_source(source, clock()))
        clock.advance(minutes=1)
    assert [r.truncated for r in runs] == [True, False, False, False]
    rules = {r["id"]: {x["rule"] for x in r["detection_reasons"]} for r in referrals(gateway)}
    visits = [f"ED-2025-00000{n}" for n in range(1, 8)]
    found = {v: rules[r] for v in visits if (r := referral_of_visit(gateway, v)) is not None}
    assert found == {
        "ED-2025-000001": {"icd10:X99"},
        "ED-2025-000002": {"snomed:52684005"},
        "ED-2025-000005": {"icd10:X99"},
        "ED-2025-000006": {"icd10:X99", "snomed:52684005"},
        "ED-2025-000007": {"icd10:X99"},
    }
    with ops_client(gateway) as http:
        [state] = http.get("/api/ops/fhir-sources").json()
        counts = http.get("/api/ops/counts").json()
    assert state["watermark"] == "2025-03-01T23:50:00Z"
    assert (state["consecutive_failures"], state["resuming"], state["mode"]) == (0, False, "poll")
    assert [c["duplicate"] for c in counts if c["sender"] == "rxx-epr"] == [0]


def test_a_failing_source_shows_on_the_operations_api_not_as_a_quiet_ed(
    source_server, make_gateway, clock
):
    gateway = make_gateway(source_server.base_url, backoff_max_seconds=300)
    source_server.fail(10, status=503)
    for _ in range(5):
        gateway.fhir.poller.poll_source(gateway.fhir.sources[0], clock())
        clock.advance(minutes=10)
    with ops_client(gateway) as http:
        [state] = http.get("/api/ops/fhir-sources").json()
    assert state["consecutive_failures"] == 5
    assert "503" in state["last_error"]
    last_run = clock() - timedelta(minutes=10)
    assert state["next_attempt_at"] == (last_run + timedelta(seconds=300)).isoformat()
    assert state["last_success_at"] is None


def test_a_notified_encounter_the_source_serves_late_becomes_a_candidate_through_the_retry(
    source_server, make_gateway, clock
):
    gateway = make_gateway(source_server.base_url, poll=False)
    _, token = gateway.fhir.clients.create(name="rxx-hook", site="RXX01", now=clock())
    note = backport_notification(source_server.base_url, "Encounter/e1")
    with ops_client(gateway) as http:
        answer = http.post(
            "/fhir/subscription-hook",
            json=note,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        )
        [missed] = http.get("/api/ops/errors").json()
        assert answer.status_code == 200
        assert [i["severity"] for i in answer.json()["issue"]] == ["information", "warning"]
        assert (missed["stage"], missed["sender"], missed["attempts"]) == ("focus", "rxx-epr", 0)
        assert http.get("/api/ops/fhir-sources").json()[0]["focus_retrying"] == 1
        source_server.add(*attendance(1, "2025-03-01T21:14:00Z"))
        clock.advance(seconds=31)
        assert gateway.fhir.receiver.retry_missed(clock()) == 1
        assert http.get("/api/ops/errors").json() == []
        [referral] = referrals(gateway)
        assert {x["rule"] for x in referral["detection_reasons"]} == {"icd10:X99"}
        [state] = http.get("/api/ops/fhir-sources").json()
    assert state["mode"] == "notifications + safety-net poll"
    assert (state["focus_retrying"], state["focus_given_up"]) == (0, 0)


def test_a_diagnosis_coded_later_makes_the_candidate_at_the_next_poll(
    source_server, make_gateway, clock
):
    source_server.add(*attendance(1, "2025-03-01T21:14:00Z", diagnosis=None))
    gateway = make_gateway(source_server.base_url, overlap_seconds=0)
    source = gateway.fhir.sources[0]
    gateway.fhir.poller.poll_source(source, clock())
    assert referrals(gateway) == []
    source_server.add(
        b.at_source(
            b.condition(id="c1", encounter_ref="Encounter/e1", code=ICD10_X99),
            "2025-03-01T22:05:00Z",
        )
    )
    clock.advance(minutes=1)
    gateway.fhir.poller.poll_source(source, clock())
    [referral] = referrals(gateway)
    assert {x["rule"] for x in referral["detection_reasons"]} == {"icd10:X99"}
