"""A real `referral-gateway serve` process on free loopback ports, for the benchmarks, the
fault-injection and load runs and the tests that kill it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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

    @property
    def pids(self) -> list[int]:
        """The serve process and the processes it started (its pipeline process)."""
        return [self.proc.pid, *child_pids(self.proc.pid)]


def start_serve(
    data_dir: Path,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    http_port: int | None = None,
    mllp_port: int | None = None,
    log_file: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 60.0,
) -> ServeProcess:
    """Start `serve` and wait until both HTTP and MLLP answer. Given ports (a restart after a
    kill) are reused; its standard error goes to `log_file` (appended) when one is given."""
    http_port, mllp_port = http_port or free_port(), mllp_port or free_port()
    env = dict(
        os.environ,
        RG_DATA_DIR=str(data_dir),
        RG_HTTP_PORT=str(http_port),
        RG_MLLP_PORT=str(mllp_port),
        RG_DATABASE_URL=database_url,
        **(extra_env or {}),
    )
    log = log_file.open("ab") if log_file else None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "referral_gateway.entrypoints.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log or subprocess.DEVNULL,
            preexec_fn=preexec_fn,
        )
    finally:
        if log:
            log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:] if log_file else ""
            raise RuntimeError(f"the gateway exited with {proc.returncode}\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=0.5).status_code == 200:
                socket.create_connection(("127.0.0.1", mllp_port), timeout=0.5).close()
                return ServeProcess(proc, http_port, mllp_port)
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError("the gateway did not start")


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started (the pipeline process among them); [] once it is gone."""
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children.extend(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return children


def resident_bytes(pid: int) -> int:
    """A process's resident set size (VmRSS), 0 once it is gone (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
