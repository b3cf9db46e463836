"""Real endpoints for alert tests: an HTTP server that records POSTs (a push service's
endpoint, a team-chat webhook) and can fail the first requests; the SMTP sink in a process
of its own; a self-signed certificate for it; a browser's push subscription keys."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..certificates import self_signed


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """Answers `fail_first` POSTs with 503, then 201; keeps every POST it got."""

    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    def start(self) -> RecordingServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = 503 if len(owner.answered) < owner.fail_first else 201
                owner.answered.append(status)
                if status == 201:
                    owner.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class BrowserKeys:
    """What a browser makes when it subscribes: a P-256 key pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @classmethod
    def make(cls) -> BrowserKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    process: subprocess.Popen[str]
    port: int
    folder: Path
    cert: Path

    @classmethod
    def start(cls, folder: Path, username: str, password: str) -> SmtpSink:
        cert, key = self_signed(folder)
        mail = folder / "mail"
        mail.mkdir()
        port = free_port()
        script = Path(__file__).with_name("smtp_sink.py")
        process = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(port),
                str(cert),
                str(key),
                str(mail),
                username,
                password,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", line
        return cls(process, port, mail, cert)

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.folder.glob("*.eml"))]

    def wait_for(self, n: int, timeout: float = 15.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages()) < n:
            time.sleep(0.05)
        return self.messages()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
