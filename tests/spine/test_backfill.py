"""Backfill: `referral-gateway replay` over directories of HL7 files of every shape and a
FHIR bulk export, giving the candidates the live feeds give, resumably (a second run adds
nothing; a run killed part way carries on without duplicates), with a progress bar and a
summary. All people here are invented (999-range NHS numbers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import SyntheticEd
from referral_gateway.config import Settings
from referral_gateway.entrypoints.cli import main
from referral_gateway.storage.database import make_engine
from referral_gateway.storage.replay_files import REPLAY_FILE
from referral_gateway.storage.views import referral_summaries
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.web import build_app
from tests.fhir import builders as b
from tests.spine.harness import sender_site_file, start_gateway

START = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
MLLP_START, MLLP_END = "\x0b", "\x1c\r"


# ---------------------------------------------------------------------------------------------
# Builders: the same messages written as files of several shapes


def hl7_stream(attendances: int, *, seed: int, site: str = "RXX01") -> list[str]:
    return list(
        SyntheticEd(seed=seed, site=site, start=START, assault_share=0.5).stream(attendances)
    )


def write_hl7_shapes(folder: Path, messages: list[str]) -> None:
    """`messages` in stream order over files of every shape (names sort in stream order):
    one message per file, LF-separated; a plain multi-message file with CRLF; MLLP frames
    one after another; an FHS/BHS batch in a subfolder."""
    quarter = len(messages) // 4
    single, crlf, framed, batch = (
        messages[:quarter],
        messages[quarter : 2 * quarter],
        messages[2 * quarter : 3 * quarter],
        messages[3 * quarter :],
    )
    (folder / "1-single").mkdir(parents=True)
    for i, message in enumerate(single):
        (folder / "1-single" / f"{i:03d}.hl7").write_text(message.replace("\r", "\n") + "\n")
    (folder / "2-crlf.txt").write_bytes("\r\n".join(m.replace("\r", "\r\n") for m in crlf).encode())
    (folder / "3-framed.mllp").write_bytes(
        "".join(MLLP_START + m + MLLP_END for m in framed).encode()
    )
    (folder / "4-batches" / "deeper").mkdir(parents=True)
    wrapped = ["FHS|^~\\&|EDIS|RXX01", "BHS|^~\\&|EDIS|RXX01", *batch, f"BTS|{len(batch)}", "FTS|1"]
    (folder / "4-batches" / "deeper" / "night.hl7").write_text("\r".join(wrapped) + "\r")


def fhir_export(count: int) -> dict[str, list[dict[str, Any]]]:
    """A bulk export: Patient, Encounter, Condition and Observation files. Even-numbered
    attendances are stabbed teenagers; odd ones adults (screened out); one Encounter is not
    an ED one and one Patient belongs to no Encounter (both skipped)."""
    files: dict[str, list[dict[str, Any]]] = {
        "Patient": [],
        "Encounter": [],
        "Condition": [],
        "Observation": [],
    }
    for n in range(count):
        born = "2009-04-12" if n % 2 == 0 else "1980-01-01"
        files["Patient"].append(b.patient(id=f"p{n}", nhs=b.nhs_number(n), birth_date=born))
        files["Encounter"].append(
            b.encounter(id=f"e{n}", visit=f"ED-BK-{n:04d}", subject=f"Patient/p{n}")
        )
        files["Condition"].append(
            b.condition(id=f"c{n}", encounter_ref=f"Encounter/e{n}", subject=f"Patient/p{n}")
        )
        files["Observation"].append(
            b.injury_intent(id=f"o{n}", encounter_ref=f"Encounter/e{n}", subject=f"Patient/p{n}")
        )
    files["Encounter"].append(
        b.encounter(id="e-inpatient", visit="IP-0001", subject="Patient/p0", klass="IMP")
    )
    files["Patient"].append(b.patient(id="p-alone", nhs=b.nhs_number(900)))
    return files


def write_export(folder: Path, export: dict[str, list[dict[str, Any]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, resources in export.items():
        lines = "".join(json.dumps(r) + "\n" for r in resources)
        (folder / f"{kind}.ndjson").write_text(lines)


def site_file(folder: Path) -> str:
    """RXX01 sends as RXX01 and RXX01UTC; any other facility is refused."""
    return sender_site_file(folder, facilities=["RXX01", "RXX01UTC"])


# ---------------------------------------------------------------------------------------------
# Reading the outcome


def referrals_seen(database_url: str, data_dir: Path) -> list[tuple[Any, ...]]:
    """What an operator sees of the referrals, without ids, in a stable order."""
    gateway = build_gateway(Settings(data_dir=data_dir, database_url=database_url))
    try:
        rows = referral_summaries(gateway.engine)
    finally:
        gateway.stop()
    return sorted(
        (r["site"], r["age"], r["injury_category"], r["status"], json.dumps(r["detection_reasons"]))
        for r in rows
    )


def inbox_count(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM inbound_message")).scalar_one()
    finally:
        engine.dispose()


def replay(capsys, data_dir: Path, database_url: str, *args: str) -> dict[str, Any]:
    argv = ["replay", "--data-dir", str(data_dir), "--database-url", database_url]
    assert main([*argv, "--no-progress", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def send_live(tmp_path: Path, database_url: str, config: str, messages: list[str]) -> None:
    running = start_gateway(tmp_path / "live", database_url, config_file=config)
    try:
        with MllpClient("127.0.0.1", running.port) as mllp:
            for message in messages:
                mllp.send(message)
        engine = running.gateway.engine

        def all_processed() -> bool:
            with engine.connect() as conn:
                return not conn.execute(
                    text("SELECT count(*) FROM inbound_message WHERE state = 'pending'")
                ).scalar_one()

        assert running.wait_until(all_processed, timeout=30)
    finally:
        running.stop()


def push_live(tmp_path: Path, database_url: str, export: dict[str, list[dict[str, Any]]]) -> None:
    """Each attendance of the export as an ED system pushes it: one transaction of PUTs."""
    gateway = build_gateway(Settings(data_dir=tmp_path / "pushed", database_url=database_url))
    gateway.intake.start()
    gateway.fhir.start(poll=False)
    try:
        _, token = gateway.fhir.clients.create(name="rxx-ed-epr", site="RXX01", now=gateway.clock())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        with TestClient(build_app(gateway), headers=headers) as http:
            for n in range(len(export["Condition"])):
                entries = [
                    b.put(export[kind][n])
                    for kind in ("Patient", "Encounter", "Condition", "Observation")
                ]
                assert http.post("/fhir", json=b.bundle(*entries)).status_code == 200
        gateway.local_pipeline().drain()
    finally:
        gateway.fhir.stop()
        gateway.intake.stop()
        gateway.stop()


# ---------------------------------------------------------------------------------------------
# Tests


def test_a_directory_of_hl7_files_of_every_shape_gives_the_candidates_the_live_feed_gives(
    tmp_path, sqlite_url, capsys
):
    messages = hl7_stream(24, seed=3) + hl7_stream(6, seed=4, site="RXX01UTC")
    write_hl7_shapes(tmp_path / "in", messages)
    config = site_file(tmp_path)
    data, folder = tmp_path / "data", str(tmp_path / "in")
    summary = replay(capsys, data, sqlite_url, "--config-file", config, folder)

    assert summary["messages"] == summary["stored"] == len(messages)
    assert summary["candidates"] > 0 and summary["errors"] == 0
    live_url = f"sqlite:///{tmp_path / 'live.db'}"
    send_live(tmp_path, live_url, config, messages)
    seen = referrals_seen(sqlite_url, data)
    assert seen == referrals_seen(live_url, tmp_path / "live")
    assert len(seen) == summary["candidates"]
    assert {site for site, *_ in seen} == {"RXX01"}  # RXX01UTC is RXX01's, as configured


def test_a_bulk_export_gives_the_candidates_the_same_attendances_pushed_live(
    tmp_path, sqlite_url, capsys
):
    export = fhir_export(6)
    write_export(tmp_path / "export", export)
    summary = replay(
        capsys, tmp_path / "data", sqlite_url, "--site", "RXX01", str(tmp_path / "export")
    )

    pushed_url = f"sqlite:///{tmp_path / 'pushed.db'}"
    push_live(tmp_path, pushed_url, export)
    seen = referrals_seen(sqlite_url, tmp_path / "data")
    assert seen == referrals_seen(pushed_url, tmp_path / "pushed")
    assert summary["candidates"] == len(seen) == 3  # the three teenagers; adults screened out
    assert summary["messages"] == 6 * 4 + 2  # every line read
    assert summary["stored"] == 6 * 4  # the inpatient Encounter and the lone Patient skipped
    assert summary["skipped"] == 2


def test_the_summary_counts_duplicates_refusals_and_errors(tmp_path, database_url, capsys):
    messages = hl7_stream(8, seed=5)
    write_hl7_shapes(tmp_path / "in", messages)
    (tmp_path / "in" / "5-again.hl7").write_text(messages[0] + "\r" + messages[1])  # resent
    refused = hl7_stream(2, seed=6, site="RZZ99")  # a facility no site lists
    (tmp_path / "in" / "6-stranger.hl7").write_text("\r".join(refused))
    (tmp_path / "in" / "7-junk.hl7").write_text("this is not HL7\n")
    write_export(tmp_path / "in" / "export", fhir_export(2))
    with (tmp_path / "in" / "export" / "Patient.ndjson").open("a") as export:
        export.write('{"not": "a resource"}\n')

    summary = replay(
        capsys,
        tmp_path / "data",
        database_url,
        "--config-file",
        site_file(tmp_path),
        "--site",
        "RXX01",
        str(tmp_path / "in"),
    )

    hl7_files = len(messages) // 4 + 3 + 3  # singles, crlf, framed, batch, again, stranger, junk
    assert summary["files"] == hl7_files + 4
    assert summary["messages"] == len(messages) + 2 + len(refused) + 1 + 2 * 4 + 2 + 1
    assert summary["duplicates"] == 2
    assert summary["refused"] == len(refused)
    assert summary["errors"] == 2  # the junk file and the line that is not a resource
    argv = ["errors", "--json", "--data-dir", str(tmp_path / "data"), "--database-url"]
    assert main([*argv, database_url]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2  # both kept in the error store
    assert summary["stored"] == len(messages) + 1 + 2 * 4
    assert summary["candidates"] == len(referrals_seen(database_url, tmp_path / "data")) > 0
    assert summary["files_skipped"] == summary["files_failed"] == 0


def test_a_second_run_adds_nothing_and_says_so(tmp_path, database_url, capsys):
    write_hl7_shapes(tmp_path / "in", hl7_stream(12, seed=7))
    write_export(tmp_path / "in" / "export", fhir_export(2))
    data, args = tmp_path / "data", ("--site", "RXX01", str(tmp_path / "in"))
    first = replay(capsys, data, database_url, *args)
    stored, referrals = inbox_count(database_url), referrals_seen(database_url, data)

    again = replay(capsys, data, database_url, *args)
    assert again["files_skipped"] == again["files"] == first["files"]
    assert again["messages"] == again["stored"] == again["candidates"] == 0
    assert inbox_count(database_url) == stored
    assert referrals_seen(database_url, data) == referrals
    argv = ["replay", "--data-dir", str(data), "--database-url", database_url, "--no-progress"]
    assert main([*argv, *args]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_file_changed_since_it_was_replayed_is_read_again_without_duplicates(
    tmp_path, sqlite_url, capsys
):
    messages = hl7_stream(6, seed=8)
    path = tmp_path / "feed.hl7"
    assert len(messages) > 10
    path.write_text("\r".join(messages[:10]))
    replay(capsys, tmp_path / "data", sqlite_url, str(path))
    path.write_text("\r".join(messages))  # the day's file, appended to
    summary = replay(capsys, tmp_path / "data", sqlite_url, str(path))
    assert summary["files_skipped"] == 0
    assert (summary["duplicates"], summary["stored"]) == (10, len(messages) - 10)


def test_the_progress_bar_shows_a_rate_and_an_eta_and_the_summary_ends_the_run(
    tmp_path, sqlite_url, capsys
):
    write_hl7_shapes(tmp_path / "in", hl7_stream(8, seed=9))
    argv = ["replay", "--data-dir", str(tmp_path / "d"), "--database-url", sqlite_url]
    assert main([*argv, str(tmp_path / "in")]) == 0
    out, err = capsys.readouterr()
    bar = err.replace("\r", "\n").splitlines()[-1]  # tqdm draws on stderr
    assert "replay" in bar and "100%" in bar and "B/s" in bar and "<00:00" in bar
    assert "file(s)" in out and "candidate(s)" in out and "duplicate(s) skipped" in out


def test_ndjson_without_a_site_is_refused_before_anything_is_stored(tmp_path, sqlite_url, capsys):
    write_export(tmp_path / "export", fhir_export(1))
    argv = ["replay", "--data-dir", str(tmp_path / "d"), "--database-url", sqlite_url]
    assert main([*argv, "--no-progress", str(tmp_path / "export")]) == 2
    assert "--site" in capsys.readouterr().err


def replay_command(data: Path, database_url: str, folder: Path) -> list[str]:
    return [
        sys.executable, "-m", "referral_gateway.entrypoints.cli", "replay",
        "--data-dir", str(data), "--database-url", database_url, "--no-progress", "--json",
        str(folder),
    ]  # fmt: skip


def test_a_run_killed_part_way_resumes_without_duplicates(tmp_path, database_url):
    messages = hl7_stream(60, seed=10)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(0, len(messages), 20):  # files big enough to be killed while storing one
        (folder / f"{i:04d}.hl7").write_text("\n".join(messages[i : i + 20]))
    files = len(list(folder.iterdir()))
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RG_")}
    command = replay_command(data, database_url, folder)
    killed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = make_engine(database_url)

    def finished_files() -> int:
        try:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(REPLAY_FILE)).scalar_one()
        except Exception:
            return 0  # not migrated yet

    deadline = time.monotonic() + 60
    while finished_files() < 2 and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.002)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done_before = finished_files()
    engine.dispose()
    assert 2 <= done_before < files

    resumed = subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    summary = json.loads(resumed.stdout)
    assert summary["files_skipped"] == done_before
    assert summary["files"] == files and summary["files_failed"] == 0
    assert inbox_count(database_url) == len(messages)  # each message stored once

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"  # one run, not interrupted
    clean = replay_command(tmp_path / "clean", clean_url, folder)
    subprocess.run(clean, env=env, capture_output=True, timeout=300, check=True)
    seen = referrals_seen(database_url, data)
    assert seen and seen == referrals_seen(clean_url, tmp_path / "clean")


def test_a_file_that_fails_is_counted_and_read_on_the_next_run_without_duplicates(
    tmp_path, database_url, capsys
):
    messages = hl7_stream(8, seed=12)
    half = len(messages) // 2
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.hl7").write_text("\r".join(messages[:half]))
    late = tmp_path / "arrives-later.hl7"
    (folder / "b.hl7").symlink_to(late)  # a link to a file not there yet: reading it fails
    data = tmp_path / "data"
    argv = ["replay", "--data-dir", str(data), "--database-url", database_url, "--no-progress"]

    assert main([*argv, "--json", str(folder)]) == 1  # a file failed: the exit code says so
    first = json.loads(capsys.readouterr().out)
    assert (first["files"], first["files_failed"], first["stored"]) == (2, 1, half)

    late.write_text("\r".join(messages))  # it holds a's messages again, and the rest
    again = replay(capsys, data, database_url, str(folder))
    assert (again["files_skipped"], again["files_failed"]) == (1, 0)
    assert (again["duplicates"], again["stored"]) == (half, len(messages) - half)
    assert inbox_count(database_url) == len(messages)
    assert first["candidates"] + again["candidates"] == len(referrals_seen(database_url, data))
