"""Identifiable data never rests in plain text: a message with known synthetic identifiers goes
through the whole gateway (inbox, HL7 decoder, pipeline, detection), consent outcomes with
free text are recorded and identity is revealed; then the database (the SQLite file with its
-wal and -shm, or every row on PostgreSQL), the data directory and every log line, SQL
parameters included, are searched for the identifiers. None may be found."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from consent.records import NotApproachedReason
from referral_gateway.config import Settings
from referral_gateway.services.sharing import RevealedIdentity
from referral_gateway.storage.views import referral_summaries
from referral_gateway.wiring.gateway import build_gateway
from tests.conftest import FixedClock
from tests.consent_store.builders import (
    FAMILY_NAME,
    LEAD,
    NEEDLES,
    T0,
    gillick,
    hl7_arrival,
    not_approached,
    override,
)


@pytest.fixture
def gateway(tmp_path, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL and its parameters
    gw = build_gateway(
        Settings(data_dir=tmp_path / "data", database_url=database_url), clock=FixedClock(T0)
    )
    yield gw
    gw.stop()
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def ingest_and_work(gateway) -> list[str]:
    """Three attendances through the pipeline; consent with a Gillick note, an override with
    its reason, a not-approached detail; identity revealed to the team lead."""
    gateway.inbox.store_batch([hl7_arrival(f"MSG{i}", visit_number=f"V{i}") for i in (1, 2, 3)])
    assert gateway.pipeline.drain() == 3
    ids = [r["id"] for r in referral_summaries(gateway.engine)]
    assert len(ids) == 3  # the pipeline made them candidates: the test ingested for real
    first, second, third = ids
    sharing = gateway.sharing
    sharing.record_consent_outcome(LEAD, first, gillick(first, by=LEAD), now=T0)
    sharing.record_consent_outcome(LEAD, second, override(second), now=T0)
    sharing.record_consent_outcome(
        LEAD,
        third,
        not_approached(third, by=LEAD, reason=NotApproachedReason.OTHER),
        now=T0,
    )
    for rid in (first, second):
        revealed = sharing.reveal_identity(LEAD, rid, now=T0)
        assert isinstance(revealed, RevealedIdentity) and revealed.family_name == FAMILY_NAME
        logging.getLogger("test").info("revealed %r for %s", revealed, rid)
        sharing.consent_history(LEAD, rid, now=T0)
    return ids


def found_in(blob: bytes) -> list[str]:
    return [n for n in NEEDLES if n.encode("utf-8") in blob or n.encode("utf-16-le") in blob]


def every_stored_value(engine) -> bytes:
    parts: list[bytes] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(parts)


def test_identifiers_are_in_no_stored_value(gateway):
    ingest_and_work(gateway)
    assert found_in(every_stored_value(gateway.engine)) == []


def test_identifiers_are_in_no_log_line_not_even_in_sql_parameters(gateway, caplog):
    ingest_and_work(gateway)
    assert any("INSERT INTO attendance" in r.getMessage() for r in caplog.records)  # SQL logged
    assert found_in(caplog.text.encode()) == []
    assert found_in("\n".join(r.getMessage() for r in caplog.records).encode()) == []


def test_identifiers_are_in_no_file_the_gateway_wrote(gateway, database_url, tmp_path):
    ingest_and_work(gateway)  # the SQLite file is in tmp_path, the data directory below it
    root: Path = tmp_path
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if database_url.startswith("sqlite"):
        names = {p.name for p in files}
        assert {"gateway.db", "gateway.db-wal"} <= names  # the file and its write-ahead log
    assert "keyring.json" in {p.name for p in files}
    assert "audit-head.json" in {p.name for p in files}
    leaks = {p.name: found_in(p.read_bytes()) for p in files}
    assert {name: hits for name, hits in leaks.items() if hits} == {}


def test_the_searches_do_find_a_name_stored_in_plain_text(gateway, tmp_path, caplog):
    """The searches are not blind: a name put in a plain column, and in a log line, is found
    in the stored values, in the database files and in the captured logs."""
    ingest_and_work(gateway)
    with gateway.engine.begin() as conn:
        conn.execute(text("UPDATE attendance SET ed_area = :v"), {"v": FAMILY_NAME})
    logging.getLogger("test").warning("patient %s", FAMILY_NAME)

    in_files = [hit for p in tmp_path.rglob("*") if p.is_file() for hit in found_in(p.read_bytes())]

    assert found_in(every_stored_value(gateway.engine)) == [FAMILY_NAME]
    assert found_in(caplog.text.encode()) == [FAMILY_NAME]
    if gateway.engine.dialect.name == "sqlite":
        assert FAMILY_NAME in in_files


VISITS = ("VN-QZ7781-1", "VN-QZ7781-2")  # PV1-19
BAY = "Cubicle-Xq93"  # PV1-3's room


def test_the_visit_number_and_bay_rest_only_encrypted_or_as_a_blind_index(
    gateway, database_url, tmp_path, caplog
):
    gateway.inbox.store_batch(
        [hl7_arrival(f"VB{i}", visit_number=v, bay=BAY) for i, v in enumerate(VISITS)]
    )
    assert gateway.pipeline.drain() == 2
    # an update of the first visit finds its attendance by the blind index: still two
    gateway.inbox.store_batch([hl7_arrival("VB-again", visit_number=VISITS[0], bay=BAY)])
    assert gateway.pipeline.drain() == 1
    with gateway.engine.connect() as conn:
        assert conn.execute(text("select count(*) from attendance")).scalar_one() == 2
        found = gateway.attendances.snapshot(conn, {("RXX01", v) for v in VISITS}).found
    assert {k[1]: a.attendance.location.bay for k, a in found.items()} == dict.fromkeys(VISITS, BAY)

    needles = [*VISITS, BAY]
    stored = every_stored_value(gateway.engine)
    assert [n for n in needles if n.encode() in stored] == []
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    if database_url.startswith("sqlite"):
        assert "gateway.db" in {p.name for p in files}
    assert [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()] == []
    assert [n for n in needles if n in caplog.text] == []
