"""The spine from the outside: real MLLP clients against a real listening socket."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from adapters.hl7.mllp import MllpLimits
from adapters.hl7.synthetic import Person, SyntheticEd, Visit, adt
from referral_gateway.storage.views import error_store, feed_counts, referral_summaries
from tests.spine.harness import frame, msa, sender_site_file, start_gateway

ARRIVAL = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)


def a_visit(
    age: int = 16,
    *,
    complaint: str | None = None,
    diagnoses: list[tuple[str, str, str]] | None = None,
    visit: str = "V0001",
) -> Visit:
    person = Person(
        mrn="MRN0000001",
        nhs_number="9990000026",
        family="Testington",
        given="Sam",
        birth_date=date(ARRIVAL.year - age, 1, 2),
        sex="M",
    )
    return Visit(
        person=person,
        visit_number=visit,
        site="RXX01",
        arrival=ARRIVAL,
        area="MAJORS",
        bay="B3",
        complaint=complaint,
        diagnoses=diagnoses or [],
    )


@pytest.fixture
def gateway(tmp_path, database_url):
    running = start_gateway(tmp_path, database_url)
    yield running
    running.stop()


def test_mllp_send_gets_an_aa_echoing_each_control_id_over_one_connection(gateway, tmp_path):
    ed = SyntheticEd(seed=7, start=ARRIVAL)
    messages = list(ed.stream(5))
    batch = tmp_path / "feed.hl7"
    batch.write_bytes(b"".join(frame(m) for m in messages))
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("mllp_send")),
            "--file",
            str(batch),
            "--port",
            str(gateway.port),
            "127.0.0.1",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    acks = [msa(a) for a in out.replace("\r", "\n").split("MSH")[1:]]
    sent_ids = [m.split("\r")[0].split("|")[9] for m in messages]
    assert acks == [("AA", cid) for cid in sent_ids]


def test_a_stabbed_sixteen_year_old_sent_over_mllp_becomes_a_candidate(gateway):
    message = adt("A01", a_visit(complaint="stabbed in thigh"), "CTRL-STAB-1", sent=ARRIVAL)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("AA", "CTRL-STAB-1")
    assert gateway.wait_until(lambda: len(referral_summaries(gateway.gateway.engine)) == 1)
    [referral] = referral_summaries(gateway.gateway.engine)
    assert (referral["age"], referral["site"], referral["status"]) == (16, "RXX01", "new")


def test_an_adult_is_acknowledged_aa_and_counted_as_filtered(gateway):
    message = adt("A01", a_visit(age=40, complaint="stabbed"), "CTRL-ADULT", sent=ARRIVAL)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("AA", "CTRL-ADULT")
    engine = gateway.gateway.engine
    assert gateway.wait_until(
        lambda: (
            engine.connect().execute(text("select state from inbound_message")).scalar()
            == "processed"
        )
    )
    assert referral_summaries(engine) == []


def test_a_repeated_control_id_gets_the_same_aa_and_is_processed_once(gateway):
    message = adt("A01", a_visit(complaint="assaulted"), "CTRL-REPEAT", sent=ARRIVAL)
    with MllpClient("127.0.0.1", gateway.port) as client:
        first = msa(client.send(message))
        second = msa(client.send(message))
    assert first == second == ("AA", "CTRL-REPEAT")
    engine = gateway.gateway.engine
    assert gateway.wait_until(lambda: len(referral_summaries(engine)) == 1)
    [row] = feed_counts(engine)
    assert (row["received"], row["duplicate"]) == (1, 1)


def test_something_that_is_not_hl7_gets_an_ar_and_waits_in_the_error_store(gateway):
    with MllpClient("127.0.0.1", gateway.port) as client:
        code, _ = msa(client.send("this is not an HL7 message"))
    assert code == "AR"
    [error] = error_store(gateway.gateway.engine)
    assert error["stage"] == "receive"


def test_an_update_can_make_an_attendance_a_candidate_late(gateway):
    visit = a_visit(complaint="injury to hand")
    with MllpClient("127.0.0.1", gateway.port) as client:
        client.send(adt("A01", visit, "CTRL-A01", sent=ARRIVAL))
        visit.diagnoses = [("SCT", "425322008", "Stab wound")]
        client.send(adt("A08", visit, "CTRL-A08", sent=ARRIVAL + timedelta(minutes=5)))
    engine = gateway.gateway.engine
    assert gateway.wait_until(lambda: len(referral_summaries(engine)) == 1)
    [referral] = referral_summaries(engine)
    assert referral["injury_category"] == "bladed"


def test_a_cancelled_arrival_voids_its_candidate(gateway):
    visit = a_visit(complaint="stabbed")
    with MllpClient("127.0.0.1", gateway.port) as client:
        client.send(adt("A01", visit, "CTRL-1", sent=ARRIVAL))
        client.send(adt("A11", visit, "CTRL-2", sent=ARRIVAL + timedelta(minutes=1)))
    engine = gateway.gateway.engine
    assert gateway.wait_until(
        lambda: [r["status"] for r in referral_summaries(engine)] == ["voided"]
    )


def test_a_discharge_shows_the_young_person_has_left(gateway):
    visit = a_visit(complaint="stabbed")
    with MllpClient("127.0.0.1", gateway.port) as client:
        client.send(adt("A01", visit, "CTRL-1", sent=ARRIVAL))
        client.send(
            adt(
                "A03",
                visit,
                "CTRL-2",
                sent=ARRIVAL + timedelta(hours=1),
                discharge=ARRIVAL + timedelta(hours=1),
            )
        )
    engine = gateway.gateway.engine
    assert gateway.wait_until(
        lambda: [r["attendance_status"] for r in referral_summaries(engine)] == ["discharged"]
    )


def test_a_sender_reading_acks_asynchronously_gets_a_commit_ack_then_an_application_ack(
    tmp_path, database_url
):
    config = sender_site_file(tmp_path, application_acks="same_connection")
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        message = adt("A01", a_visit(complaint="stabbed"), "CTRL-ENH", sent=ARRIVAL)
        header, rest = message.split("\r", 1)
        enhanced = header + "|||AL|AL\r" + rest  # MSH-15 accept AL, MSH-16 application AL
        with MllpClient("127.0.0.1", gateway.port) as client:
            commit = msa(client.send(enhanced))
            application = msa(client.read_reply())
        assert commit == ("CA", "CTRL-ENH")
        assert application == ("AA", "CTRL-ENH")
        assert len(referral_summaries(gateway.gateway.engine)) == 1  # processed before the AA
    finally:
        gateway.stop()


def test_a_message_over_the_size_limit_gets_an_ar_and_the_connection_carries_on(tmp_path):
    running = start_gateway(
        tmp_path, f"sqlite:///{tmp_path / 'g.db'}", limits=MllpLimits(max_frame_bytes=2000)
    )
    try:
        big = adt("A01", a_visit(complaint="x" * 5000), "CTRL-BIG", sent=ARRIVAL)
        small = adt("A01", a_visit(complaint="stabbed", visit="V2"), "CTRL-SMALL", sent=ARRIVAL)
        with MllpClient("127.0.0.1", running.port) as client:
            assert msa(client.send(big)) == ("AR", "CTRL-BIG")
            assert msa(client.send(small)) == ("AA", "CTRL-SMALL")
    finally:
        running.stop()


def test_storage_that_fails_gets_ae_never_aa(tmp_path):
    running = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        with running.gateway.engine.begin() as conn:
            conn.execute(text("drop table feed_count"))  # every commit now fails
        message = adt("A01", a_visit(complaint="stabbed"), "CTRL-AE", sent=ARRIVAL)
        with MllpClient("127.0.0.1", running.port) as client:
            assert msa(client.send(message)) == ("AE", "CTRL-AE")
    finally:
        running.stop()
