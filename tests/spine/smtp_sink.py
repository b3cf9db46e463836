"""A real SMTP relay for tests, run in its own process with `sys.executable`: aiosmtpd with
STARTTLS required and credentials required after it; each message received is written to
a folder as `<n>.eml`.

    python smtp_sink.py PORT CERT KEY FOLDER USERNAME PASSWORD

Prints `ready` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import signal
import ssl
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.count += 1
        rcpt = ",".join(envelope.rcpt_tos)
        body = envelope.original_content or envelope.content
        part = self.folder / f"{self.count}.part"
        part.write_bytes(f"X-Sink-Rcpt: {rcpt}\r\n".encode() + body)
        part.rename(self.folder / f"{self.count}.eml")
        return "250 OK"


def main() -> None:
    port, cert, key, folder, username, password = sys.argv[1:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    controller = Controller(
        Sink(Path(folder)),
        hostname="127.0.0.1",
        port=int(port),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
