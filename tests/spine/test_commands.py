"""The command line as an operator uses it: replay, referrals, counts, errors, reprocess,
demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.hl7.demo import run_demo_feed
from adapters.hl7.synthetic import SyntheticEd
from referral_gateway.entrypoints.cli import main
from tests.spine.harness import start_gateway

START = datetime(2026, 4, 2, 20, 0, tzinfo=UTC)


@pytest.fixture
def feed(tmp_path):
    """A file of synthetic ADT messages, one per MSH, LF between them, plus one line of junk."""
    messages = list(SyntheticEd(seed=11, start=START, assault_share=0.4).stream(30))
    path = tmp_path / "feed.hl7"
    path.write_text("\n".join(messages) + "\n")
    return path, messages


def run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_replay_runs_a_file_through_the_pipeline_and_a_second_replay_changes_nothing(
    tmp_path, feed, capsys
):
    path, messages = feed
    data = str(tmp_path / "data")
    first = json.loads(
        run(capsys, "replay", "--data-dir", data, "--no-progress", "--json", str(path))
    )
    again = json.loads(
        run(capsys, "replay", "--data-dir", data, "--no-progress", "--json", str(path))
    )
    assert first["messages"] == len(messages) == first["processed"]
    assert first["candidates"] > 0
    assert again["files_skipped"] == 1  # finished by the first run: not read again
    assert again["messages"] == again["stored"] == again["processed"] == 0


def test_replay_shows_a_progress_bar(tmp_path, feed, capsys):
    path, _ = feed
    assert main(["replay", "--data-dir", str(tmp_path / "d"), str(path)]) == 0
    progress = capsys.readouterr().err  # tqdm draws on stderr
    assert "replay" in progress and "B/s" in progress


def test_referrals_json_lists_candidates_without_identifiable_fields(tmp_path, feed, capsys):
    path, messages = feed
    data = str(tmp_path / "data")
    run(capsys, "replay", "--data-dir", data, "--no-progress", "--json", str(path))
    rows = json.loads(run(capsys, "referrals", "--json", "--data-dir", data))
    assert rows
    assert set(rows[0]) >= {
        "id",
        "site",
        "age",
        "injury_category",
        "status",
        "detection_reasons",
    }
    assert "visit_number" not in rows[0]
    text = json.dumps(rows)
    for message in messages:
        pid = next(s for s in message.split("\r") if s.startswith("PID"))
        pv1 = next(s for s in message.split("\r") if s.startswith("PV1"))
        nhs_number = pid.split("|")[3].split("^")[0]
        family = pid.split("|")[5].split("^")[0]
        visit = pv1.split("|")[19].split("^")[0]
        assert nhs_number not in text and family not in text and visit not in text


def test_counts_show_each_sender_and_day(tmp_path, feed, capsys):
    path, messages = feed
    data = str(tmp_path / "data")
    run(capsys, "replay", "--data-dir", data, "--no-progress", "--json", str(path))
    [row] = json.loads(run(capsys, "counts", "--json", "--data-dir", data))
    assert row["sender"] == "EDIS^RXX01" and row["received"] == len(messages)
    referrals = json.loads(run(capsys, "referrals", "--json", "--data-dir", data))
    assert row["candidate"] == len(referrals) > 0
    assert "EDIS^RXX01" in run(capsys, "counts", "--data-dir", data)


def test_errors_and_reprocess_work_from_the_command_line(tmp_path, capsys):
    bad = tmp_path / "bad.hl7"
    # readable MSH, but an ADT A01 with no PV1-19 and no patient identifier: cannot be mapped
    bad.write_text("MSH|^~\\&|EDIS|RXX01|RG|RG|20260402200000||ADT^A01|BAD1|P|2.4\rPID|1\r")
    data = str(tmp_path / "data")
    summary = json.loads(
        run(capsys, "replay", "--data-dir", data, "--no-progress", "--json", str(bad))
    )
    assert summary["errors"] == 1
    [error] = json.loads(run(capsys, "errors", "--json", "--data-dir", data))
    assert error["stage"] == "map"
    out = run(capsys, "reprocess", "--data-dir", data)
    assert "requeued 1" in out and "1 still in the error store" in out


def test_a_missing_key_ring_is_reported_plainly(tmp_path, feed, capsys):
    path, _ = feed
    data = tmp_path / "data"
    run(capsys, "replay", "--data-dir", str(data), "--no-progress", str(path))
    (data / "keyring.json").unlink()
    assert main(["referrals", "--data-dir", str(data)]) == 2
    assert "key ring" in capsys.readouterr().err.lower()


def test_the_demo_feed_is_acknowledged_aa_by_a_running_gateway(tmp_path):
    running = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        summary = run_demo_feed("127.0.0.1", running.port, count=10, rate=0, seed=5)
    finally:
        running.stop()
    assert summary["messages"] >= 20 and summary["acks"] == {"AA": summary["messages"]}
