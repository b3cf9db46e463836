"""`serve` runs the MLLP listener in a process of its own (`MllpProcess`): what that process
must do from the outside: store before it acknowledges, wake the pipeline, answer
application ACKs with the pipeline's verdict, hand each reply's latency to the metrics, come
back on the same port if it dies, say plainly why it cannot listen, and die with the gateway."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from referral_gateway.config import Settings
from referral_gateway.entrypoints.mllp_process import ListenerStartError, MllpProcess
from referral_gateway.storage.views import feed_counts, referral_summaries
from referral_gateway.wiring.gateway import Gateway, build_gateway
from tests.hl7.messages import adt as hl7_message
from tests.spine.harness import msa, sender_site_file
from tests.spine.test_mllp_end_to_end import ARRIVAL, a_visit
from tests.spine.test_pipeline_process import alive, children_of
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Listening:
    """A gateway (its pipeline on a thread) and its listener in a child process, wired as
    `serve` wires them."""

    gateway: Gateway
    listener: MllpProcess
    latencies: list[float] = field(default_factory=list)

    def send(self, message: str) -> tuple[str, str]:
        with MllpClient("127.0.0.1", self.listener.port) as client:
            return msa(client.send(message))

    def stop(self) -> None:
        self.listener.stop()
        self.gateway.stop()


def listening(data_dir: Path, database_url: str, **settings: object) -> Listening:
    config = Settings(
        data_dir=data_dir,
        database_url=database_url,
        mllp_host="127.0.0.1",
        mllp_port=0,
        **settings,  # type: ignore[arg-type]
    )
    gateway = build_gateway(config).start()
    latencies: list[float] = []
    listener = MllpProcess(
        config, on_stored=gateway.worker.wake, on_replied=latencies.append, restart_delay=0.2
    )
    gateway.processed_listeners.append(listener.completed)
    try:
        listener.start()
    except BaseException:
        gateway.stop()
        raise
    return Listening(gateway, listener, latencies)


@pytest.fixture
def running(tmp_path, database_url) -> Iterator[Listening]:
    running = listening(tmp_path, database_url)
    yield running
    running.stop()


def stabbing(visit: str, control_id: str) -> str:
    return adt("A01", a_visit(complaint="stabbed", visit=visit), control_id, sent=ARRIVAL)


def test_a_message_acknowledged_by_the_listener_process_is_stored_and_becomes_a_candidate(
    running,
):
    assert running.listener.pid not in (None, os.getpid())

    assert running.send(stabbing("V1", "CTRL-1")) == ("AA", "CTRL-1")

    [row] = feed_counts(running.gateway.engine)
    assert row["received"] == 1  # committed before the ACK left the other process
    # the child told this process, which woke its pipeline
    assert wait_until(lambda: len(referral_summaries(running.gateway.engine)) == 1)


def test_each_reply_s_latency_reaches_this_process_for_the_metrics(running):
    for n in range(3):
        assert running.send(stabbing(f"V{n}", f"CTRL-{n}"))[0] == "AA"

    assert wait_until(lambda: len(running.latencies) == 3)
    assert all(0 < seconds < 30 for seconds in running.latencies)


def test_an_application_ack_carries_the_pipeline_s_verdict_across_the_processes(
    tmp_path, database_url
):
    # enhanced mode: no accept ACK (MSH-15 NE), an application ACK always (MSH-16 AL): the
    # listener process can only answer once this process's pipeline says the message is done
    config = sender_site_file(tmp_path, application_acks="same_connection")
    running = listening(tmp_path, database_url, config_file=config)
    try:
        message = hl7_message("A01", accept_ack="NE", application_ack="AL", control_id="ENH-1")
        assert running.send(message) == ("AA", "ENH-1")
        [row] = feed_counts(running.gateway.engine)
        assert row["received"] == 1 and row["errored"] == 0
    finally:
        running.stop()


def test_a_killed_listener_process_comes_back_on_the_same_port(running):
    port, first = running.listener.port, running.listener.pid
    assert running.listener.serving

    os.kill(first, signal.SIGKILL)

    assert wait_until(lambda: running.listener.pid != first and running.listener.serving)
    assert running.listener.port == port
    assert running.send(stabbing("V9", "CTRL-9")) == ("AA", "CTRL-9")
    assert wait_until(lambda: len(referral_summaries(running.gateway.engine)) == 1)


def test_a_taken_port_is_refused_with_a_reason_a_person_can_act_on(tmp_path, sqlite_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = Settings(
            data_dir=tmp_path, database_url=sqlite_url, mllp_host="127.0.0.1", mllp_port=port
        )
        gateway = build_gateway(config).start()
        try:
            with pytest.raises(ListenerStartError, match="address already in use"):
                MllpProcess(config, on_stored=gateway.worker.wake).start()
        finally:
            gateway.stop()


def names(pid: int) -> set[str]:
    found = set()
    for child in children_of(pid):
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile
            found.add(Path(f"/proc/{child}/comm").read_text().strip())
    return found


def test_the_listener_process_ends_and_frees_its_port_when_serve_is_killed(tmp_path, sqlite_url):
    from bench.serve_process import start_serve

    serve = start_serve(tmp_path, sqlite_url)
    try:
        # the pipeline's process and the listener's, named for `ps` and `top`
        assert wait_until(lambda: {"rg-pipeline", "rg-mllp"} <= names(serve.proc.pid))
        children = children_of(serve.proc.pid)
    finally:
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(10)
    assert wait_until(lambda: not any(alive(child) for child in children), timeout=30)

    def port_free() -> bool:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a listener does
            try:
                probe.bind(("127.0.0.1", serve.mllp_port))
            except OSError:
                return False
            return True

    assert wait_until(port_free, timeout=30)  # a restarted serve can listen there again


# A program that starts the listener's process and ends without stopping it.
FORGETFUL = """
import sys
from pathlib import Path
from referral_gateway.config import Settings
from referral_gateway.entrypoints.mllp_process import MllpProcess
from referral_gateway.wiring.gateway import build_gateway
data = Path(sys.argv[1])
url = f"sqlite:///{data / 'gateway.db'}"
settings = Settings(data_dir=data, database_url=url, mllp_host="127.0.0.1", mllp_port=0)
build_gateway(settings)  # the schema and the key ring, which the listener's process opens
print(MllpProcess(settings, on_stored=lambda: None).start().pid, flush=True)
"""


def test_a_program_that_never_stops_the_listener_still_exits_and_takes_it_along(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", FORGETFUL, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert ended.returncode == 0, ended.stderr
    child = int(ended.stdout.split()[0])
    assert wait_until(lambda: not alive(child), timeout=30)
