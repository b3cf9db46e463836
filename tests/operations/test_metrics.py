"""`/metrics` of a real gateway (`serve`, its pipeline in a process of its own) after real
MLLP and FHIR sends, parsed with prometheus_client's own text parser: each count is what the
test sent. Then the health endpoints, and `/metrics` refused without the ops token."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from tests.fhir import builders as fhir
from tests.operations.gateways import serve
from tests.spine.harness import msa
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

OPS = "ops-token-for-the-metrics-test-0123456789"
SITE = "RXX01"
HL7_SENDER = f"EDIS^{SITE}"
FHIR_CLIENT = "rxx-ed-epr"


def visit(n: int, *, age: int, complaint: str) -> Visit:
    arrival = datetime.now(UTC).replace(microsecond=0)
    person = Person(
        mrn=f"MRN{n:07d}",
        nhs_number="9990000026",
        family="Testington",
        given="Sam",
        birth_date=date(arrival.year - age, 1, 2),
        sex="M",
    )
    return Visit(
        person,
        f"V{n:04d}",
        SITE,
        arrival,
        "MAJORS",
        "B3",
        complaint=complaint,
    )


def scrape(url: str, token: str | None = OPS) -> dict[tuple[str, tuple], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    reply.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def create_fhir_token(env_dir, database_url, keyring) -> str:
    import os

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "referral_gateway.entrypoints.cli",
            "tokens",
            "create",
            "--site",
            SITE,
            "--name",
            FHIR_CLIENT,
        ],
        env=dict(
            os.environ,
            RG_DATA_DIR=str(env_dir),
            RG_DATABASE_URL=database_url,
            RG_KEYRING_FILE=str(keyring),
        ),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return out.stdout.decode().strip().splitlines()[-1]


def test_metrics_count_what_was_sent_over_mllp_and_fhir(database_url, tmp_path):
    keyring = tmp_path / "keyring.json"
    token = create_fhir_token(tmp_path / "gw", database_url, keyring)
    gateway = serve(tmp_path / "gw", database_url, keyring_file=keyring, ops_token=OPS)
    try:
        before = time.time()
        now = datetime.now(UTC)
        stabbed = [
            adt("A01", visit(i, age=16, complaint="stabbed"), f"C{i}", sent=datetime.now(UTC))
            for i in range(3)
        ]
        adults = [
            adt("A01", visit(10 + i, age=40, complaint="stabbed"), f"C1{i}", sent=datetime.now(UTC))
            for i in range(2)
        ]
        whole = adt("A01", visit(20, age=16, complaint="stabbed"), "C20", sent=now)
        header_only = "\r".join(whole.split("\r")[:2])  # MSH and EVN: nothing to map
        acks = []
        with MllpClient("127.0.0.1", gateway.mllp_port) as client:
            for message in [*stabbed, *adults, header_only, stabbed[0]]:  # the last: a duplicate
                acks.append(msa(client.send(message))[0])
        assert acks == ["AA"] * 7

        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        bundles = [fhir.attendance_bundle(100 + i) for i in range(2)]
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as c:
            for b in bundles:
                assert c.post("/fhir", json=b).status_code == 200
        after = time.time()

        samples = wait_for(
            lambda: (
                (s := scrape(gateway.url))
                and value(s, "rg_candidates_total", site=SITE) == 5
                and value(s, "rg_pipeline_lag_seconds") == 0
                # the header-only message reaches the error store after its retries
                and value(s, "rg_messages_errored_total", channel="hl7v2", sender=HL7_SENDER) == 1
                and s
            ),
            what="the pipeline to finish",
        )
        hl7 = {"channel": "hl7v2", "sender": HL7_SENDER}
        assert value(samples, "rg_messages_received_total", **hl7) == 6
        assert value(samples, "rg_messages_duplicate_total", **hl7) == 1
        assert value(samples, "rg_messages_errored_total", **hl7) == 1  # MSH and EVN alone
        fhir_received = sum(
            v
            for (name, labels), v in samples.items()
            if name == "rg_messages_received_total" and ("channel", "fhir") in labels
        )
        assert fhir_received == 6  # Patient, Encounter and Condition of each bundle
        fhir_sender = {"channel": "fhir", "sender": FHIR_CLIENT}
        # the Patient and Condition of each bundle are evaluated with its Encounter
        assert value(samples, "rg_messages_filtered_total", **fhir_sender) == 4
        assert value(samples, "rg_messages_filtered_total", **hl7) == 0
        assert value(samples, "rg_ack_latency_seconds_count") == 7  # one ACK per frame
        assert value(samples, "rg_ack_latency_seconds_bucket", le="+Inf") == 7
        assert 0 < value(samples, "rg_ack_latency_seconds_sum") < 7
        last = value(samples, "rg_feed_last_message_timestamp_seconds", site=SITE, **hl7)
        assert before - 1 <= last <= after + 1
        assert value(samples, "rg_queue_oldest_unclaimed_seconds", site=SITE) >= 0
        assert ("rg_queue_oldest_unclaimed_seconds", (("site", SITE),)) in samples

        refused = httpx.get(f"{gateway.url}/metrics", timeout=10)
        assert refused.status_code == 401
        wrong = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        assert httpx.get(f"{gateway.url}/health/live").status_code == 200
        ready = httpx.get(f"{gateway.url}/health/ready")
        assert (ready.status_code, ready.json()["checks"]) == (
            200,
            {"database": True, "mllp": True},
        )
    finally:
        gateway.stop()
