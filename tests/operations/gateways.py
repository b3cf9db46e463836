"""Real gateways in processes of their own (`referral-gateway serve`), for the operations
tests: several on one database, each with its own data directory and ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedGateway:
    proc: subprocess.Popen[bytes]
    mllp_port: int
    http_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(
    data_dir: Path, database_url: str, *, keyring_file: Path, **settings: str
) -> ServedGateway:
    """Start `serve` and wait until its MLLP port answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mllp_port, http_port = free_port(), free_port()
    env = dict(
        os.environ,
        RG_DATA_DIR=str(data_dir),
        RG_DATABASE_URL=database_url,
        RG_KEYRING_FILE=str(keyring_file),
        RG_MLLP_PORT=str(mllp_port),
        RG_HTTP_PORT=str(http_port),
        **{f"RG_{k.upper()}": v for k, v in settings.items()},
    )
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "referral_gateway.entrypoints.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log.read_text()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", mllp_port), timeout=0.2).close()
            socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
            return ServedGateway(proc, mllp_port, http_port, log)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start listening")
