"""MLLP over TLS with a self-signed certificate made for the test."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from adapters.hl7.mllp import Peer

from ..certificates import self_signed
from .fakes import AcceptingHandler, ack, adt_a04, framed, read_replies, read_until_closed


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 and its key, as PEM files."""
    return self_signed(tmp_path_factory.mktemp("tls"))


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_messages_over_tls_are_acknowledged_and_the_peer_is_marked_tls(running_server, certificate):
    cert_file, key_file = certificate
    handler = AcceptingHandler()
    server = running_server(handler, ssl_context=server_context(cert_file, key_file))
    client_context = ssl.create_default_context(cafile=str(cert_file))
    messages = [adt_a04("TLS1"), adt_a04("TLS2")]

    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=3) as raw,
        client_context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"".join(framed(m) for m in messages))
        replies = read_replies(sock, 2)

    assert replies == [ack(m) for m in messages]
    assert [p.tls for p in handler.peers] == [True, True]
    assert isinstance(handler.peers[0], Peer)


def test_plain_text_sender_gets_nothing_from_a_tls_listener(running_server, certificate):
    handler = AcceptingHandler()
    server = running_server(handler, ssl_context=server_context(*certificate))

    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(framed(adt_a04("PLAIN1")))
        rest = read_until_closed(sock)

    assert b"MSA" not in rest
    assert handler.frames == []


def test_a_verified_client_certificate_names_the_peer_by_its_subject(
    running_server, certificate, tmp_path
):
    client_cert, client_key = self_signed(tmp_path, "edis.rxx01.test", "Example Trust")
    context = server_context(*certificate)
    context.load_verify_locations(client_cert)
    context.verify_mode = ssl.CERT_REQUIRED
    handler = AcceptingHandler()
    server = running_server(handler, ssl_context=context)
    client_context = ssl.create_default_context(cafile=str(certificate[0]))
    client_context.load_cert_chain(client_cert, client_key)

    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=3) as raw,
        client_context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(framed(adt_a04("CERT1")))
        assert read_replies(sock, 1) == [ack(adt_a04("CERT1"))]

    assert handler.peers[0].certificate_subject == "CN=edis.rxx01.test,O=Example Trust"
