"""What the gateway refuses, and how it says so: malformed and unusable messages, and senders
it does not know. A whole gateway behind a real socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from referral_gateway.storage.views import error_store, feed_counts, quarantine
from tests.hl7.messages import adt, er7, evn, msh, pid, pv1
from tests.spine.harness import msa, sender_site_file, start_gateway

STAB = "DG1|1||425322008^Stab wound^SCT||20240310222000|W"


@pytest.fixture
def gateway(tmp_path, database_url):
    running = start_gateway(tmp_path, database_url)
    yield running
    running.stop()


def inbox(gateway) -> list[tuple[str, str]]:
    """(state, site) of every stored message, in arrival order."""
    with gateway.gateway.engine.connect() as conn:
        rows = conn.execute(text("select state, site from inbound_message order by id")).all()
    return [(r.state, r.site) for r in rows]


def test_a_malformed_msh2_gets_an_ar_carrying_the_control_id(gateway):
    message = adt(control_id="CTRL-SEPS").replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("AR", "CTRL-SEPS")
    [error] = error_store(gateway.gateway.engine)
    assert error["stage"] == "receive"


def test_a_malformed_msh2_in_enhanced_mode_gets_a_cr_carrying_the_control_id(gateway):
    message = adt(control_id="CTRL-SEPS2", accept_ack="AL", application_ack="NE")
    message = message.replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("CR", "CTRL-SEPS2")


@pytest.mark.parametrize(
    "unusable",
    ["MSH|^~", "MSH|^~\\&", "MSH|^~\\&|EDIS|RXX01|GATEWAY|TMRG|20240310223500||||P|2.5.1"],
    ids=["encoding-characters-only", "msh-with-nothing-after", "no-message-type"],
)
def test_an_unusable_message_gets_an_ar_never_an_aa_and_lands_in_the_error_store(gateway, unusable):
    with MllpClient("127.0.0.1", gateway.port) as client:
        code, _ = msa(client.send(unusable))
    assert code == "AR"
    [error] = error_store(gateway.gateway.engine)
    assert error["stage"] == "receive"


def test_a_lone_msh_gets_an_ar_echoing_its_control_id_and_lands_in_the_error_store(gateway):
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(msh(control_id="CTRL-ALONE"))) == ("AR", "CTRL-ALONE")
        enhanced = msh(control_id="CTRL-ALONE2", accept_ack="AL", application_ack="AL")
        assert msa(client.send(enhanced)) == ("CR", "CTRL-ALONE2")
    assert [e["stage"] for e in error_store(gateway.gateway.engine)] == ["receive", "receive"]


def test_a_five_thousand_character_facility_never_becomes_a_site(gateway):
    message = er7(msh(control_id="CTRL-LONG", facility="X" * 5000), evn(), pid(), pv1(), STAB)
    with MllpClient("127.0.0.1", gateway.port) as client:
        code, answered = msa(client.send(message))
    assert (code, answered) == ("AR", "CTRL-LONG")
    assert inbox(gateway) == []
    assert feed_counts(gateway.gateway.engine) == []


def test_without_a_site_file_any_facility_code_is_its_own_site_as_before(gateway):
    message = er7(msh(control_id="CTRL-NEW", facility="RZZ09^New ED^L"), evn(), pid(), pv1(), STAB)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("AA", "CTRL-NEW")
    assert gateway.wait_until(lambda: inbox(gateway) == [("processed", "RZZ09")])


def test_a_facility_no_site_lists_gets_an_ar_and_nothing_is_stored(tmp_path, database_url):
    config = sender_site_file(tmp_path, facilities=["RXX01"])
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        stranger = er7(msh(control_id="CTRL-WHO", facility="RQQ77"), evn(), pid(), pv1(), STAB)
        known = adt("A01", STAB, control_id="CTRL-KNOWN")
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(stranger)) == ("AR", "CTRL-WHO")
            assert msa(client.send(known)) == ("AA", "CTRL-KNOWN")
        assert gateway.wait_until(lambda: inbox(gateway) == [("processed", "RXX01")])
    finally:
        gateway.stop()


def test_a_second_facility_code_of_a_site_counts_for_that_site(tmp_path, database_url):
    config = sender_site_file(tmp_path, facilities=["RXX01", "RXX01UTC"])
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        message = er7(msh(control_id="CTRL-UTC", facility="rxx01utc"), evn(), pid(), pv1(), STAB)
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(message)) == ("AA", "CTRL-UTC")
        assert gateway.wait_until(lambda: inbox(gateway) == [("processed", "RXX01")])
    finally:
        gateway.stop()


def test_a_known_facility_from_a_network_its_site_does_not_list_gets_an_ar(tmp_path, database_url):
    config = sender_site_file(tmp_path, networks=["10.99.0.0/16"])
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(adt("A01", STAB, control_id="CTRL-NET"))) == ("AR", "CTRL-NET")
        assert inbox(gateway) == []
    finally:
        gateway.stop()


def test_a_listed_network_lets_the_site_send(tmp_path, database_url):
    config = sender_site_file(tmp_path, networks=["10.99.0.0/16", "127.0.0.0/8"])
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(adt("A01", STAB, control_id="CTRL-OK"))) == ("AA", "CTRL-OK")
    finally:
        gateway.stop()


def run_cli(*args: str, data_dir: Path, database_url: str, config: str) -> str:
    command = Path(sys.executable).with_name("referral-gateway")
    result = subprocess.run(
        [str(command), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "RG_DATA_DIR": str(data_dir),
            "RG_DATABASE_URL": database_url,
            "RG_CONFIG_FILE": config,
        },
    )
    return result.stdout


def test_a_quarantined_message_is_held_until_an_administrator_accepts_it(tmp_path, database_url):
    config = sender_site_file(tmp_path, networks=["10.99.0.0/16"], unknown_source="quarantine")
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    try:
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(adt("A01", STAB, control_id="CTRL-HOLD"))) == ("AA", "CTRL-HOLD")
        [held] = quarantine(gateway.gateway.engine)
        assert held["site"] == "RXX01" and "127.0.0.1" in held["why"]
        gateway.wait_until(lambda: False, timeout=0.5)  # the pipeline has had its chance
        assert inbox(gateway) == [("quarantined", "RXX01")]
    finally:
        gateway.stop()

    listed = run_cli(
        "quarantine", "list", data_dir=tmp_path, database_url=database_url, config=config
    )
    assert f"#{held['id']}" in listed
    said = run_cli(
        "quarantine", "accept", "--id", str(held["id"]),
        data_dir=tmp_path, database_url=database_url, config=config,
    )  # fmt: skip
    assert "accepted 1 held message(s)" in said
    restarted = start_gateway(tmp_path, database_url, config_file=config)
    try:
        assert inbox(restarted) == [("processed", "RXX01")]
        assert quarantine(restarted.gateway.engine) == []
    finally:
        restarted.stop()


def test_a_flood_from_an_unknown_sender_is_logged_once_and_counted(gateway, caplog):
    message = er7(msh(control_id="CTRL-FLOOD", facility="Y" * 40), evn(), pid(), pv1(), STAB)
    with MllpClient("127.0.0.1", gateway.port) as client:
        for _ in range(20):
            assert msa(client.send(message))[0] == "AR"
    told = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(told) == 1
    assert gateway.hl7.stats.rejected_senders == 20
