"""HL7 ACKs do not wait for FHIR: a real `serve`, one large FHIR transaction Bundle that keeps
the HTTP side busy for a good while (validated, decided and committed on its event loop), and
an HL7 sender meanwhile, one message at a time as MLLP requires. Every ACK is AA and none
waited anything like as long as the Bundle took."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from tests.fhir import builders as fhir
from tests.operations.gateways import serve
from tests.operations.test_metrics import create_fhir_token, visit
from tests.spine.harness import msa

pytestmark = pytest.mark.slow

ATTENDANCES_IN_THE_BIG_BUNDLE = 600  # 1,800 resources: about a second of the HTTP side's time


def big_transaction() -> dict:
    entries = [
        entry
        for n in range(ATTENDANCES_IN_THE_BIG_BUNDLE)
        for entry in fhir.attendance_bundle(1000 + n)["entry"]
    ]
    return fhir.bundle(*entries)


def test_hl7_acks_are_not_held_up_by_a_long_fhir_request(sqlite_url, tmp_path):
    keyring = tmp_path / "keyring.json"
    token = create_fhir_token(tmp_path / "gw", sqlite_url, keyring)
    gateway = serve(tmp_path / "gw", sqlite_url, keyring_file=keyring)
    body = big_transaction()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    try:
        with MllpClient("127.0.0.1", gateway.mllp_port) as client:
            assert msa(
                client.send(
                    adt("A04", visit(0, age=16, complaint="stabbed"), "W0", sent=datetime.now(UTC))
                )
            )[0] == ("AA")
            answered: dict[str, float] = {}

            def post_the_big_bundle() -> None:
                t0 = time.perf_counter()
                reply = httpx.post(f"{gateway.url}/fhir", json=body, headers=headers, timeout=120)
                answered["status"] = reply.status_code
                answered["seconds"] = time.perf_counter() - t0

            poster = threading.Thread(target=post_the_big_bundle)
            started = time.perf_counter()
            poster.start()
            acks: list[tuple[str, float]] = []
            n = 1
            while poster.is_alive():
                message = adt(
                    "A04", visit(n, age=16, complaint="stabbed"), f"M{n}", sent=datetime.now(UTC)
                )
                t0 = time.perf_counter()
                code = msa(client.send(message))[0]
                acks.append((code, time.perf_counter() - t0))
                n += 1
                time.sleep(0.01)
            poster.join()
        bundle_seconds = answered["seconds"]
        assert answered["status"] == 200
        assert bundle_seconds > 0.5, "the Bundle was too quick to show anything"
        assert len(acks) >= 5, f"only {len(acks)} messages went while the Bundle was in"
        assert {code for code, _ in acks} == {"AA"}
        slowest = max(seconds for _, seconds in acks)
        assert slowest < bundle_seconds / 3, (
            f"an ACK took {slowest:.3f} s while the Bundle took {bundle_seconds:.3f} s "
            f"({len(acks)} messages in {time.perf_counter() - started:.1f} s)"
        )
    finally:
        gateway.stop()
