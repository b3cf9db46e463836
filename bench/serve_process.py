"""A real `referral-gateway serve` process on free loopback ports, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    http_port: int
    mllp_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def start_serve(
    data_dir: Path, database_url: str, extra_env: dict[str, str] | None = None
) -> ServeProcess:
    """Start `serve` and wait until both HTTP and MLLP answer."""
    http_port, mllp_port = free_port(), free_port()
    env = dict(
        os.environ,
        RG_DATA_DIR=str(data_dir),
        RG_HTTP_PORT=str(http_port),
        RG_MLLP_PORT=str(mllp_port),
        RG_DATABASE_URL=database_url,
        **(extra_env or {}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=0.5).status_code == 200:
                socket.create_connection(("127.0.0.1", mllp_port), timeout=0.5).close()
                return ServeProcess(proc, http_port, mllp_port)
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the gateway did not start")
