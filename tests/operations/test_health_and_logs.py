"""Readiness says no when the database or a listener is down; `/metrics` is refused to
everyone while no ops token is set; JSON logs carry no exception text; APScheduler's per-run
lines stay out of the log."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from referral_gateway.observability.logs import configure_logging
from referral_gateway.observability.metrics import build_metrics
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.web.monitoring import monitoring_router
from tests.conftest import FixedClock


def client(engine, *, ops_token=None, listeners=None) -> TestClient:
    app = FastAPI()
    metrics = build_metrics(engine, FixedClock())
    app.include_router(
        monitoring_router(engine, metrics, ops_token=ops_token, listeners=listeners or {})
    )
    return TestClient(app)


def test_ready_when_the_database_answers_and_the_listener_is_up(engine):
    up = {"mllp": True}
    c = client(engine, listeners={"mllp": lambda: up["mllp"]})
    assert c.get("/health/ready").status_code == 200
    up["mllp"] = False
    reply = c.get("/health/ready")
    assert (reply.status_code, reply.json()["checks"]) == (503, {"database": True, "mllp": False})
    assert c.get("/health/live").status_code == 200


def test_not_ready_when_the_database_does_not_answer():
    gone = make_engine("postgresql+psycopg://rg:rg@127.0.0.1:9/rg")  # nothing listens on 9
    c = client(gone, listeners={"mllp": lambda: True})
    reply = c.get("/health/ready")
    assert (reply.status_code, reply.json()["checks"]) == (503, {"database": False, "mllp": True})
    assert c.get("/health/live").status_code == 200


def test_metrics_are_refused_to_everyone_while_no_ops_token_is_set(engine):
    migrate(engine)
    assert client(engine).get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert client(engine).get("/metrics").status_code == 403
    with_token = client(engine, ops_token="t" * 32)
    assert with_token.get("/metrics").status_code == 401
    ok = with_token.get("/metrics", headers={"Authorization": f"Bearer {'t' * 32}"})
    assert ok.status_code == 200 and "rg_pipeline_lag_seconds 0.0" in ok.text


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.NOTSET)


def deliberate(request) -> None:
    """The identifiers these tests put in an exception on purpose did reach log records (that
    is the point: they must not reach the output): the leak check is told so."""
    request.config.pluginmanager.get_plugin("leakcheck").take(request.node.nodeid)


def test_json_logs_are_one_object_a_line_and_show_an_exception_by_its_type_only(
    capsys, restored_logging, request
):
    configure_logging("json")
    log = logging.getLogger("referral_gateway.test")
    log.warning("feed silent: %s", "EDIS^RXX01")
    try:
        raise ValueError("PID 9990000026 Testington")  # what a library might quote
    except ValueError:
        log.error("mapping failed", exc_info=True)
    logging.getLogger("apscheduler.executors.default").info('Running job "x"')

    lines = capsys.readouterr().err.strip().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("WARNING", "referral_gateway.test", "feed silent: EDIS^RXX01"),
        ("ERROR", "referral_gateway.test", "mapping failed"),
    ]
    assert entries[1]["error"] == "ValueError"
    assert "9990000026" not in "".join(lines) and "Testington" not in "".join(lines)
    deliberate(request)


def test_text_logs_show_an_exception_by_its_type_only(capsys, restored_logging, request):
    configure_logging("text")
    try:
        raise ValueError("PID 9990000026 Testington")
    except ValueError:
        logging.getLogger("referral_gateway.test").error("mapping failed", exc_info=True)
    err = capsys.readouterr().err
    assert "mapping failed" in err and "error: ValueError" in err
    assert "9990000026" not in err
    deliberate(request)
