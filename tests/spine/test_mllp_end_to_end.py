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


def with_msh(message: str, **fields: str) -> str:
    """The message with some MSH fields replaced, named `msh3`, `msh4`, `msh7`..."""
    header, rest = message.split("\r", 1)
    parts = header.split("|")
    for name, value in fields.items():
        number = int(name.removeprefix("msh"))
        parts.extend([""] * (number - len(parts)))  # MSH-1 is the "|" itself: field n is [n-1]
        parts[number - 1] = value
    return "|".join(parts) + "\r" + rest


def inbox_state(engine, control_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("select state from inbound_message where message_key = :k"), {"k": control_id}
        ).scalar_one_or_none()


def test_a_sender_reading_acks_asynchronously_gets_a_commit_ack_then_an_application_ack(
    tmp_path, database_url
):
    config = sender_site_file(tmp_path, application_acks="same_connection")
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        _commit_then_application_acks(gateway)
    finally:
        gateway.stop()


def _commit_then_application_acks(gateway) -> None:
    engine = gateway.gateway.engine
    message = adt("A01", a_visit(complaint="stabbed"), "CTRL-ENH", sent=ARRIVAL)
    enhanced = with_msh(message, msh15="AL", msh16="AL")  # accept AL, application AL
    # An A40 merge without its MRG segment is stored (CA) but fails in processing: only an
    # application ACK that waited for processing can know to say AE rather than AA.
    unprocessable = with_msh(
        adt("A40", a_visit(visit="V-MERGE"), "CTRL-ENH-BAD", sent=ARRIVAL), msh15="AL", msh16="AL"
    )
    with MllpClient("127.0.0.1", gateway.port) as client:
        commit = msa(client.send(enhanced))
        application = msa(client.read_reply())
        state_at_application_ack = inbox_state(engine, "CTRL-ENH")
        bad_commit = msa(client.send(unprocessable))
        bad_application = msa(client.read_reply())
        bad_state_at_application_ack = inbox_state(engine, "CTRL-ENH-BAD")
    assert commit == ("CA", "CTRL-ENH")
    assert application == ("AA", "CTRL-ENH")
    assert state_at_application_ack == "processed"
    assert len(referral_summaries(engine)) == 1  # processed before the AA
    assert bad_commit == ("CA", "CTRL-ENH-BAD")
    assert bad_application == ("AE", "CTRL-ENH-BAD")
    assert bad_state_at_application_ack == "error"


def test_duplicates_are_known_by_application_facility_and_control_id_together(gateway):
    # The sender is MSH-3 with MSH-4: a resend (same MSH-10, stamped anew in MSH-7) from the
    # same application at the same facility is a duplicate; the same MSH-10 from the same
    # application at another facility, or from another application, is a message of its own.
    def sent(app: str, facility: str, control_id: str, visit: str, minutes: int = 0) -> str:
        message = adt("A01", a_visit(complaint="stabbed", visit=visit), control_id, sent=ARRIVAL)
        stamp = (ARRIVAL + timedelta(minutes=minutes)).strftime("%Y%m%d%H%M%S")
        return with_msh(message, msh3=app, msh4=facility, msh7=stamp)

    messages = [
        sent("EDIS", "RXX01", "CTRL-DUP-1", "V1"),
        sent("EDIS", "RXX01", "CTRL-DUP-1", "V1", minutes=2),  # the resend
        sent("EDIS", "RYY02", "CTRL-DUP-1", "V2"),  # another facility, same application
        sent("PAS", "RXX01", "CTRL-DUP-1", "V3"),  # another application, same facility
        sent("EDIS", "RXX01", "CTRL-DUP-2", "V4"),
    ]
    with MllpClient("127.0.0.1", gateway.port) as client:
        acks = [msa(client.send(m)) for m in messages]
    assert [code for code, _ in acks] == ["AA"] * 5
    assert [cid for _, cid in acks] == ["CTRL-DUP-1"] * 4 + ["CTRL-DUP-2"]
    engine = gateway.gateway.engine
    with engine.connect() as conn:
        stored = conn.execute(text("select count(*) from inbound_message")).scalar_one()
    assert stored == 4
    counts = feed_counts(engine)
    assert sum(r["received"] for r in counts) == 4
    assert sum(r["duplicate"] for r in counts) == 1


def test_a_message_without_a_sending_facility_gets_an_ar_naming_msh4(gateway):
    message = with_msh(
        adt("A01", a_visit(complaint="stabbed"), "CTRL-NOFAC", sent=ARRIVAL), msh4=""
    )
    with MllpClient("127.0.0.1", gateway.port) as client:
        reply = client.send(message)
    assert msa(reply) == ("AR", "CTRL-NOFAC")
    with gateway.gateway.engine.connect() as conn:
        stored = conn.execute(text("select count(*) from inbound_message")).scalar_one()
    assert stored == 0


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
