"""The MLLP listener as `serve` builds it (`referral_gateway.wiring.mllp`, in a process of its
own): from the settings, on the gateway's database, real sockets."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from referral_gateway.config import Settings
from referral_gateway.entrypoints.mllp_process import MllpProcess
from referral_gateway.wiring.gateway import build_gateway
from tests.mllp.fakes import acknowledged_id, adt_a04, framed, read_replies, read_until_closed
from tests.mllp.test_tls import certificate  # noqa: F401  (the self-signed certificate fixture)


def stored(listening: Listening) -> int:
    with listening.gateway.engine.connect() as conn:
        return int(conn.execute(text("select count(*) from inbound_message")).scalar_one())


class Listening:
    """The listener as `serve` runs it: in a process of its own."""

    def __init__(self, settings: Settings) -> None:
        self.gateway = build_gateway(settings).start()
        self.listener = MllpProcess(settings, on_stored=self.gateway.worker.wake).start()
        self.port = self.listener.port

    def stop(self) -> None:
        self.listener.stop()
        self.gateway.stop()


@pytest.fixture
def tls_serve(tmp_path: Path, sqlite_url: str, certificate) -> Iterator[tuple[Listening, Path]]:  # noqa: F811
    cert_file, key_file = certificate
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        mllp_host="127.0.0.1",
        mllp_port=0,
        mllp_tls_cert=str(cert_file),
        mllp_tls_key=str(key_file),
    )
    listening = Listening(settings)
    yield listening, cert_file
    listening.stop()


def test_serve_speaks_tls_when_a_certificate_is_configured_and_stores_before_acking(tls_serve):
    listening, cert_file = tls_serve
    client = ssl.create_default_context(cafile=str(cert_file))

    with (
        socket.create_connection(("127.0.0.1", listening.port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(framed(adt_a04("WIRED1")))
        [reply] = read_replies(sock, 1)

    assert b"MSA|AA|" in reply
    assert acknowledged_id(reply) == b"WIRED1"
    assert stored(listening) == 1


def test_a_plain_text_sender_gets_no_ack_from_the_tls_listener(tls_serve):
    listening, _ = tls_serve

    with socket.create_connection(("127.0.0.1", listening.port), timeout=5) as sock:
        sock.sendall(framed(adt_a04("PLAIN1")))
        answer = read_until_closed(sock)

    assert b"MSA|" not in answer
    assert stored(listening) == 0
