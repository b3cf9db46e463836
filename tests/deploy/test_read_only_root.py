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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mllp.fakes import adt_a04, connect, framed, read_replies
from tests.operations.gateways import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DATA_MOUNT = "/mnt"  # where the namespace puts the writable data directory
KEYS_MOUNT = "/srv"  # and the key ring's directory (both outside the new /tmp)
UNSHARE = "/usr/bin/unshare" if Path("/usr/bin/unshare").exists() else None  # util-linux


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


@dataclass
class ReadOnlyGateway:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def wait_healthy(self) -> None:
        """Until the image's own HEALTHCHECK passes."""
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve ended ({self.proc.returncode}):\n{self.output()}")
            checked = subprocess.run(self.health, env=self.env, capture_output=True, check=False)
            if checked.returncode == 0:
                return
            assert time.monotonic() < deadline, checked.stderr.decode()[-2000:]
            time.sleep(0.5)

    @property
    def health(self) -> list[str]:
        return healthcheck_command()

    def ack_code(self, control_id: str) -> bytes:
        with connect(int(self.env["RG_MLLP_PORT"]), timeout=10) as sock:
            sock.sendall(framed(adt_a04(control_id)))
            (reply,) = read_replies(sock, 1)
        msa = next(seg for seg in reply.split(b"\r") if seg.startswith(b"MSA|"))
        return msa.split(b"|")[1]

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def output(self) -> str:
        return self.log.read_text()[-4000:]


OLD_TMP = "/media"  # where the old /tmp stays reachable while code under it is bound back


def _code_under_tmp() -> list[Path]:
    """The project and the interpreter's environment, where they live under /tmp (a clone
    checked out there): the new tmpfs would hide them from `serve`."""
    places = {Path(__file__).resolve().parents[2], Path(sys.prefix).resolve()}
    under = sorted(p for p in places if p.is_relative_to("/tmp"))
    return [p for p in under if not any(p != q and p.is_relative_to(q) for q in under)]


def _fresh_tmp_keeping(code: list[Path]) -> list[str]:
    """A new tmpfs on /tmp, with `code` bound back read-only at its own path."""
    steps = []
    if code:
        steps.append(f"mount --bind /tmp {OLD_TMP}")
    steps.append("mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp")
    for place in code:
        inside = shlex.quote(str(place))
        kept = shlex.quote(f"{OLD_TMP}/{place.relative_to('/tmp')}")
        steps += [
            f"mkdir -p {inside}",
            f"mount --bind {kept} {inside}",
            f"mount -o remount,bind,ro {inside}",
        ]
    return steps


def read_only_serve(
    data: Path, keys: Path, database_url: str, *, keys_writable: bool
) -> ReadOnlyGateway:
    """`serve` with `/` read-only, a new tmpfs on /tmp, `data` at /mnt (writable) and `keys`
    at /srv (writable or not), as deploy/compose.yaml mounts them."""
    keys_mode = "rw" if keys_writable else "ro"
    script = " && ".join(
        [
            "mount --bind / /",
            "mount -o remount,bind,ro /",
            f"mount --bind {shlex.quote(str(data))} {DATA_MOUNT}",
            f"mount -o remount,bind,rw {DATA_MOUNT}",
            f"mount --bind {shlex.quote(str(keys))} {KEYS_MOUNT}",
            f"mount -o remount,bind,{keys_mode} {KEYS_MOUNT}",
            *_fresh_tmp_keeping(_code_under_tmp()),
            "exec " + shlex.join([sys.executable, "-c", SERVE_WITHOUT_WRITE_EXECUTE]),
        ]
    )
    env = dict(
        os.environ,
        RG_DATA_DIR=DATA_MOUNT,
        RG_DATABASE_URL=database_url,
        RG_KEYRING_FILE=f"{KEYS_MOUNT}/keyring.json",
        RG_MLLP_PORT=str(free_port()),
        RG_HTTP_PORT=str(free_port()),
        PYTHONDONTWRITEBYTECODE="1",
        HOME="/tmp",
    )
    data.mkdir(exist_ok=True)
    log = data.with_suffix(".log")
    assert UNSHARE is not None
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
        )
    return ReadOnlyGateway(proc, env, log)


def keys_command(tmp_path: Path, keys: Path, database_url: str, action: str) -> dict:
    """`referral-gateway keys ACTION` run beside the gateways, on the shared key ring."""
    done = subprocess.run(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", "keys", action],
        env=dict(
            os.environ,
            RG_DATA_DIR=str(tmp_path / "admin"),
            RG_DATABASE_URL=database_url,
            RG_KEYRING_FILE=str(keys / "keyring.json"),
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout) if action == "status" else {"said": done.stdout}


@needs_namespaces
def test_two_gateways_run_on_a_read_only_root_writing_only_their_data_and_key_ring_directories(
    postgres_url, tmp_path
):
    keys = tmp_path / "keys"
    keys.mkdir()
    first = read_only_serve(tmp_path / "a", keys, postgres_url, keys_writable=True)
    second = None
    try:
        first.wait_healthy()  # migrated; key ring and VAPID key made
        second = read_only_serve(tmp_path / "b", keys, postgres_url, keys_writable=False)
        second.wait_healthy()
        assert first.ack_code("RO-0001") == b"AA"
        assert second.ack_code("RO-0002") == b"AA"

        # a rotation done beside them, in the shared directory, reaches both, the one that
        # reads the ring through a read-only mount included: what they store next is
        # under the new key only
        before = keys_command(tmp_path, keys, postgres_url, "status")["active"]
        rotated = keys_command(tmp_path, keys, postgres_url, "rotate")
        after = keys_command(tmp_path, keys, postgres_url, "status")
        assert after["active"] != before, rotated
        time.sleep(1.5)  # the gateways look at the ring's file at most once a second
        assert second.ack_code("RO-0003") == b"AA"
        assert first.ack_code("RO-0004") == b"AA"
        usage = keys_command(tmp_path, keys, postgres_url, "status")["columns"]
        payloads = usage["inbound_message.payload_enc"]
        assert payloads[after["active"]] == 4 and payloads[before] == 0, usage
    finally:
        codes = [g.stop() for g in (first, second) if g is not None]
    for gateway in (first, second):
        assert gateway is not None
        assert "Read-only file system" not in gateway.log.read_text(), gateway.output()
    assert codes == [0, 0], first.output() + (second.output() if second else "")
    assert (tmp_path / "a" / "serve.lock").exists() and (tmp_path / "b" / "serve.lock").exists()
    assert {p.name for p in keys.iterdir()} == {"keyring.json", "vapid_private.pem"}


def test_the_healthcheck_fails_while_nothing_answers():
    port = free_port()
    checked = subprocess.run(
        healthcheck_command(),
        env=dict(os.environ, RG_HTTP_PORT=str(port)),
        capture_output=True,
        check=False,
    )
    assert checked.returncode != 0
