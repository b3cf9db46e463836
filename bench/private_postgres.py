"""A PostgreSQL 15 cluster of our own (initdb in a temporary folder, a free port), so a run
can stop and start its database under load without touching the shared server on 5432.

Run as root, the cluster belongs to the `postgres` user (initdb refuses root); otherwise
to whoever runs it. Trust authentication on 127.0.0.1 only; the socket stays in the
cluster's folder."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.serve_process import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rg-private-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            BIN / "initdb",
            "-D",
            self.data,
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = on\n"
                "max_connections = 200\nshared_buffers = 64MB\n"
            )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash for the clients: connections cut, no checkpoint."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return (
            subprocess.run(
                self._argv(BIN / "pg_ctl", "-D", self.data, "status"),
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    def destroy(self) -> None:
        if self.data.exists() and self.is_running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _argv(self, *argv: object) -> list[str]:
        args = [str(a) for a in argv]
        return ["runuser", "-u", self._user, "--", *args] if self._user else args

    def _run(self, *argv: object) -> None:
        started = time.monotonic()
        done = subprocess.run(self._argv(*argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(str(argv[0])).name} failed after {time.monotonic() - started:.1f} s: "
                f"{done.stderr.strip()[-1000:]}"
            )

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()
