"""One reply per message on the sender's connection; application ACKs only where the sender's
configuration sends them. A whole gateway behind a real socket, clients that read the way
interface engines do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from tests.hl7.messages import adt
from tests.spine.harness import msa, sender_site_file, start_gateway

STAB = "DG1|1||425322008^Stab wound^SCT||20240310222000|W"


def message(control_id: str, accept: str = "", application: str = "", visit: str = "") -> str:
    pv1 = f"PV1|1|E|MAJ^B3^^RXX01||||||||||||||||{visit or control_id}"
    return adt(
        "A01",
        STAB,
        control_id=control_id,
        accept_ack=accept,
        application_ack=application,
        visit=pv1,
    )


# (MSH-15, MSH-16) and whether the sender gets a reply on its connection
MIXED_STREAM = [
    ("", ""),  # original mode: the one ACK (AA)
    ("AL", "AL"),  # accept ACK (CA); the application ACK must not follow on this connection
    ("", ""),
    ("AL", "NE"),
    ("NE", "NE"),  # no reply at all
    ("AL", "AL"),
    ("NE", "AL"),  # no accept ACK; no application ACK route: nothing
    ("AL", "AL"),
    ("ER", "AL"),  # accept ACK only on error: stored, so none
    ("", ""),
]


def replies_expected(accept: str, application: str) -> bool:
    return (accept, application) == ("", "") or accept == "AL"


def test_a_frame_at_a_time_sender_reads_the_reply_to_each_message_it_just_sent(
    tmp_path, database_url
):
    gateway = start_gateway(tmp_path, database_url)
    try:
        with MllpClient("127.0.0.1", gateway.port, timeout=5) as client:
            for i, (accept, application) in enumerate(MIXED_STREAM):
                control_id = f"MIX{i}"
                client.sock.sendall(b"\x0b" + message(control_id, accept, application).encode())
                client.sock.sendall(b"\x1c\r")
                if replies_expected(accept, application):
                    code, answered = msa(client.read_reply())  # exactly one reply, as Mirth
                    assert answered == control_id
                    assert code == ("AA" if not accept else "CA")
                time.sleep(0.3)  # time enough for processing, and for anything owed to arrive
            # nothing more was written: no reply waits unread behind the last one
            client.sock.settimeout(1.0)
            with pytest.raises(TimeoutError):
                client.sock.recv(1)
            assert client._buffer == b""
        asked = sum(1 for _, application in MIXED_STREAM if application == "AL")
        assert gateway.hl7.stats.application_acks_not_configured == asked
        assert gateway.wait_until(lambda: processed(gateway) == len(MIXED_STREAM))
    finally:
        gateway.stop()


def processed(gateway) -> int:
    with gateway.gateway.engine.connect() as conn:
        return int(
            conn.execute(
                text("select count(*) from inbound_message where state = 'processed'")
            ).scalar_one()
        )


def state_of(gateway, control_id: str) -> str:
    with gateway.gateway.engine.connect() as conn:
        return str(
            conn.execute(
                text("select state from inbound_message where message_key = :key"),
                {"key": control_id},
            ).scalar_one()
        )


def test_application_acks_not_configured_are_logged_once_per_sender(tmp_path, database_url, caplog):
    gateway = start_gateway(tmp_path, database_url)
    try:
        with MllpClient("127.0.0.1", gateway.port) as client:
            for i in range(3):
                code, _ = msa(client.send(message(f"ONCE{i}", "AL", "AL")))
                assert code == "CA"
    finally:
        gateway.stop()
    told = [r for r in caplog.records if "application ACKs asked for" in r.getMessage()]
    assert len(told) == 1
    assert "RXX01" in told[0].getMessage()
    assert gateway.hl7.stats.application_acks_not_configured == 3


class ReturnListener:
    """The sender's own MLLP listener for application ACKs: a real socket on a free port.
    `on_frame` runs as each frame arrives (so a test can look at the gateway right then)."""

    def __init__(self, on_frame: Callable[[bytes], object], *, port: int = 0) -> None:
        self.on_frame = on_frame
        self.frames: list[tuple[bytes, object]] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.2)
                buffer = b""
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\x1c\r" in buffer:
                        frame, buffer = buffer.split(b"\x1c\r", 1)
                        content = frame.lstrip(b"\x0b")
                        self.frames.append((content, self.on_frame(content)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_application_ack_goes_to_the_return_address_only_after_processing(
    tmp_path, database_url
):
    holder: dict[str, object] = {}

    def state_when_it_arrived(frame: bytes) -> str:
        return state_of(holder["gateway"], "RET1")

    listener = ReturnListener(state_when_it_arrived)
    config = sender_site_file(
        tmp_path, application_acks="return", return_host="127.0.0.1", return_port=listener.port
    )
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    holder["gateway"] = gateway
    try:
        with MllpClient("127.0.0.1", gateway.port, timeout=5) as client:
            assert msa(client.send(message("RET1", "AL", "AL"))) == ("CA", "RET1")
            assert msa(client.send(message("RET2"))) == ("AA", "RET2")  # original mode
            assert gateway.wait_until(lambda: len(listener.frames) == 1)
            client.sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                client.sock.recv(1)  # nothing else came back on the sender's connection
        [(ack, state_then)] = listener.frames
        assert msa(ack.decode()) == ("AA", "RET1")
        assert state_then == "processed"  # its effects were committed before its AA left
        assert gateway.hl7.stats.application_acks_sent == 1
    finally:
        gateway.stop()
        listener.close()


def test_an_application_ack_waits_for_the_return_address_to_come_up(tmp_path, database_url):
    port = free_port()
    config = sender_site_file(
        tmp_path, application_acks="return", return_host="127.0.0.1", return_port=port
    )
    gateway = start_gateway(tmp_path, database_url, config_file=config)
    listener: ReturnListener | None = None
    try:
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(message("LATE1", "AL", "AL"))) == ("CA", "LATE1")
        assert gateway.wait_until(lambda: gateway.hl7.stats.application_acks_sent == 1)
        time.sleep(0.5)  # the first attempt has failed: nobody listens yet
        listener = ReturnListener(lambda frame: None, port=port)
        assert gateway.wait_until(lambda: len(listener.frames) == 1, timeout=15)
        assert msa(listener.frames[0][0].decode()) == ("AA", "LATE1")
    finally:
        gateway.stop()
        if listener is not None:
            listener.close()
