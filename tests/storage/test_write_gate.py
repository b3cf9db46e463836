"""The SQLite write gate queues writers across processes, not only across threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from referral_gateway.storage.database import make_engine, write_gate

ROOT = Path(__file__).resolve().parents[2]

# Another process: take the gate, say so, hold it until told to let go, say so.
HOLDER = """
import sys, time
from pathlib import Path
from referral_gateway.storage.database import make_engine, write_gate
db, log, release = sys.argv[1:]
with write_gate(make_engine(f"sqlite:///{db}")):
    with open(log, "a") as f:
        f.write("other process in\\n")
    while not Path(release).exists():
        time.sleep(0.01)
    with open(log, "a") as f:
        f.write("other process out\\n")
"""


def test_a_writer_waits_while_another_process_holds_the_gate(tmp_path):
    db, log, release = tmp_path / "gateway.db", tmp_path / "order.log", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(log), str(release)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.read_text() == "other process in\n"

        def write_here() -> None:
            with write_gate(make_engine(f"sqlite:///{db}")), open(log, "a") as f:
                f.write("this process in\n")

        writer = threading.Thread(target=write_here)
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive()  # still queued behind the other process
        release.touch()
        writer.join(timeout=30)
        assert log.read_text().splitlines() == [
            "other process in",
            "other process out",
            "this process in",
        ]
    finally:
        release.touch()  # never leave the other process waiting
        holder.wait(30)


def test_the_gate_lives_beside_the_database_file(tmp_path):
    with write_gate(make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")):
        pass
    assert (tmp_path / "gateway.db-gate").exists()
