from fastapi.testclient import TestClient

from referral_gateway.config import Settings
from referral_gateway.storage.inbox import Arrival
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.web import build_app


def test_feed_counts_are_served_as_json_to_the_holder_of_the_ops_token(tmp_path, clock):
    gateway = build_gateway(Settings(data_dir=tmp_path), clock=clock)
    gateway.inbox.store_batch(
        [Arrival("hl7v2", "EDIS^RXX01", "C1", "ADT^A01", "RXX01", b"x", clock())]
    )
    client = TestClient(build_app(gateway, ops_token="s3cret"))
    assert client.get("/api/ops/counts").status_code == 401
    rows = client.get("/api/ops/counts", headers={"Authorization": "Bearer s3cret"}).json()
    assert [(r["sender"], r["received"]) for r in rows] == [("EDIS^RXX01", 1)]
    gateway.stop()


def test_the_error_store_is_served_as_json(tmp_path, clock):
    gateway = build_gateway(Settings(data_dir=tmp_path), clock=clock)
    gateway.inbox.store_batch(
        [
            Arrival(
                "hl7v2",
                "unknown",
                "bad",
                "",
                "",
                b"junk",
                clock(),
                state="error",
                error_stage="receive",
                error_detail="no MSH segment",
            )
        ]
    )
    client = TestClient(build_app(gateway, ops_token="s3cret"))
    rows = client.get("/api/ops/errors", headers={"Authorization": "Bearer s3cret"}).json()
    assert [(r["stage"], r["error"]) for r in rows] == [("receive", "no MSH segment")]
    gateway.stop()


def test_without_an_ops_token_configured_the_operations_api_refuses_everyone(tmp_path, clock):
    gateway = build_gateway(Settings(data_dir=tmp_path), clock=clock)
    gateway.inbox.store_batch(
        [Arrival("hl7v2", "EDIS^RXX01", "C1", "ADT^A01", "RXX01", b"x", clock())]
    )
    client = TestClient(build_app(gateway, ops_token=None))
    for path in ("/api/ops/counts", "/api/ops/errors"):
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            reply = client.get(path, headers=headers)
            assert reply.status_code == 403, (path, headers)
            assert "RG_OPS_TOKEN" in reply.json()["detail"]
            assert "EDIS" not in reply.text
    gateway.stop()
