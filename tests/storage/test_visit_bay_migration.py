"""The step that stops storing visit numbers and bays in plain text, run on a database made
before it (SQLite and PostgreSQL): existing rows get a blind index and a ciphertext, and are
found again by their visit numbers; without the right key ring nothing is changed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from consent.errors import KeyRingError
from consent.keyring import KeyRing
from referral_gateway.domain.attendance import Attendance
from referral_gateway.storage.attendances import ATTENDANCE, AttendanceStore
from referral_gateway.storage.database import _alembic_config, make_engine, migrate
from tests.consent_store.builders import T0, arrival_event

STEP, BEFORE = "0008_visit_bay_encrypted", "0007_account_changes"
ROWS = (("RXX01", "VN-OLD-0001", "Resus 2"), ("RXX01", "VN-OLD-0002", None))


def migrate_to_before_the_step(engine: sa.Engine) -> None:
    cfg = _alembic_config()
    heads = ScriptDirectory.from_config(cfg).get_heads()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in heads:
            command.upgrade(cfg, BEFORE if head == STEP else head)


def old_rows(keyring: KeyRing) -> list[dict[str, object]]:
    """Attendances as the gateway stored them before the step: plain visit key and bay."""
    store = AttendanceStore(keyring)
    rows = []
    for site, visit, bay in ROWS:
        values = store.row_values(
            visit_key=visit,
            attendance=Attendance.from_event(arrival_event(visit, site=site)),
            age_at_arrival=16,
            detection_rule="coded_assault",
            detection={},
            nhs_number_valid=True,
            message_id=0,
            now=T0,
        )
        del values["bay_enc"]
        rows.append({**values, "visit_key": visit, "bay": bay, "created_at": T0})
    return rows


@pytest.fixture
def old_database(database_url, keyring):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate_to_before_the_step(engine)
    before = sa.Table(
        "attendance",
        sa.MetaData(),
        *[c._copy() for c in ATTENDANCE.columns if c.name != "bay_enc"],
        sa.Column("bay", sa.String(80)),
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(before), old_rows(keyring))
    yield engine
    engine.dispose()


def plain_values(engine: sa.Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("attendance")}
        bay = "bay" if "bay" in columns else "NULL"
        return [
            tuple(r)
            for r in conn.execute(sa.text(f"SELECT visit_key, {bay} FROM attendance ORDER BY id"))
        ]


def test_existing_visit_numbers_and_bays_are_encrypted_and_still_found(old_database, keyring):
    migrate(old_database, keyring=keyring)
    with old_database.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("attendance")}
        stored = conn.execute(sa.select(ATTENDANCE.c.visit_key, ATTENDANCE.c.bay_enc)).all()
        found = AttendanceStore(keyring).snapshot(conn, {(s, v) for s, v, _ in ROWS}).found
    assert "bay" not in columns
    assert {k for k, _ in stored} == {
        keyring.blind_index(f"{site}|{visit}", purpose="visit_number") for site, visit, _ in ROWS
    }
    assert all(b"Resus" not in (enc or b"") for _, enc in stored)
    assert {key: s.attendance.location.bay for key, s in found.items()} == {
        (site, visit): bay for site, visit, bay in ROWS
    }
    assert {s.attendance.visit_number for s in found.values()} == {v for _, v, _ in ROWS}


def test_without_the_key_ring_or_with_another_the_step_stops_and_changes_nothing(
    old_database, keyring
):
    before = plain_values(old_database)
    with pytest.raises(KeyRingError, match="needs the key ring"):
        migrate(old_database)
    with pytest.raises(KeyRingError):
        migrate(old_database, keyring=KeyRing.generate())
    assert plain_values(old_database) == before
    migrate(old_database, keyring=keyring)  # the right ring still can
    assert plain_values(old_database) != before


def test_a_database_without_attendances_needs_no_key_ring(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as conn:
        assert "bay_enc" in {c["name"] for c in sa.inspect(conn).get_columns("attendance")}
    engine.dispose()
