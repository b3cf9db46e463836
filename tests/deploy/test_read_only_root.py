"""The gateway on a read-only root filesystem, as the container image runs it: a real `serve`
in a private mount namespace where `/` is read-only, `/tmp` is a fresh tmpfs and only the
data directory and the key ring's directory are writable. It must start, answer the image's
own HEALTHCHECK, acknowledge a message with AA, and leave its files where they belong.

Needs root and `unshare` (a private mount namespace changes nothing outside the test's own
processes); skipped, saying so, where neither is to be had. Docker itself is not needed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mllp.fakes import adt_a04, connect, framed, read_replies
from tests.operations.gateways import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DATA_MOUNT = "/mnt"  # where the namespace puts the writable data directory
KEYS_MOUNT = "/srv"  # and the key ring's directory (both outside the new /tmp)
UNSHARE = shutil.which("unshare", path="/usr/bin:/bin")


def _namespaces_available() -> bool:
    if os.geteuid() != 0 or UNSHARE is None:
        return False
    probe = subprocess.run(
        [UNSHARE, "-m", "--propagation", "private", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_available(), reason="needs root and unshare for a private mount namespace"
)


# `serve` with no memory ever both writable and executable, as the systemd unit's
# MemoryDenyWriteExecute=true imposes: prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN), the
# kernel's own form of it (Linux 6.3+), kept by the pipeline process it starts.
SERVE_WITHOUT_WRITE_EXECUTE = """
import ctypes, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed: errno %d" % ctypes.get_errno())
sys.argv = ["referral-gateway", "serve"]
runpy.run_module("referral_gateway.entrypoints.cli", run_name="__main__")
"""


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK of deploy/Dockerfile, as the exec-form list Docker would run."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK"))
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]  # the image's python is this one here


def read_only_serve(
    data: Path, keys: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """`serve` with `/` read-only, a new tmpfs on /tmp, `data` at /mnt and `keys` at /srv."""
    script = " && ".join(
        [
            "mount --bind / /",
            "mount -o remount,bind,ro /",
            f"mount --bind {shlex.quote(str(data))} {DATA_MOUNT}",
            f"mount -o remount,bind,rw {DATA_MOUNT}",
            f"mount --bind {shlex.quote(str(keys))} {KEYS_MOUNT}",
            f"mount -o remount,bind,rw {KEYS_MOUNT}",
            "mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp",
            "exec " + shlex.join([sys.executable, "-c", SERVE_WITHOUT_WRITE_EXECUTE]),
        ]
    )
    assert UNSHARE is not None
    with log.open("wb") as out:
        return subprocess.Popen(
            [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
        )


@needs_namespaces
def test_serve_runs_on_a_read_only_root_writing_only_its_data_and_key_ring_directories(
    postgres_url, tmp_path
):
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir()
    mllp_port, http_port = free_port(), free_port()
    env = dict(
        os.environ,
        RG_DATA_DIR=DATA_MOUNT,
        RG_DATABASE_URL=postgres_url,
        RG_KEYRING_FILE=f"{KEYS_MOUNT}/keyring.json",
        RG_MLLP_PORT=str(mllp_port),
        RG_HTTP_PORT=str(http_port),
        PYTHONDONTWRITEBYTECODE="1",
        HOME="/tmp",
    )
    log = tmp_path / "serve.log"
    proc = read_only_serve(data, keys, env, log)
    try:
        health = healthcheck_command()
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve ended ({proc.returncode}):\n{log.read_text()[-4000:]}")
            checked = subprocess.run(health, env=env, capture_output=True, check=False)
            if checked.returncode == 0:
                break
            assert time.monotonic() < deadline, checked.stderr.decode()[-2000:]
            time.sleep(0.5)

        with connect(mllp_port, timeout=10) as sock:
            sock.sendall(framed(adt_a04("RO-0001")))
            (reply,) = read_replies(sock, 1)
        assert b"MSA|AA|RO-0001" in reply
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert "Read-only file system" not in out, out[-4000:]
    assert proc.returncode == 0, out[-4000:]
    assert (data / "serve.lock").exists()
    assert {p.name for p in keys.iterdir()} >= {"keyring.json", "vapid_private.pem"}


def test_the_healthcheck_fails_while_nothing_answers():
    port = free_port()
    checked = subprocess.run(
        healthcheck_command(),
        env=dict(os.environ, RG_HTTP_PORT=str(port)),
        capture_output=True,
        check=False,
    )
    assert checked.returncode != 0
