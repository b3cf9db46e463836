"""deploy/fetch-nhsuk-frontend.sh, run as the setup commands run it, with a stand-in `npm`
first on PATH (no registry here): a tarball that is not the pinned release is refused and
nothing is unpacked; a folder already holding the pinned release is left alone."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "fetch-nhsuk-frontend.sh"
BASH = "/bin/bash"

# `npm pack nhsuk-frontend@10.6.1` that writes a small, well-formed tarball of other bytes
FAKE_NPM = """#!/bin/sh
echo "$@" >> "$NPM_CALLS"
cp "$FAKE_TARBALL" ./nhsuk-frontend-10.6.1.tgz
"""


def stand_in_npm(tmp_path: Path) -> dict[str, str]:
    tarball = tmp_path / "other.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in ("nhsuk-frontend.min.css", "nhsuk-frontend.min.js", "assets/manifest.json"):
            data = b"/* not the reviewed release */"
            info = tarfile.TarInfo(f"package/dist/nhsuk/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_TARBALL": str(tarball),
        "NPM_CALLS": str(tmp_path / "npm-calls"),
    }


def fetch(dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT), str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_tarball_that_is_not_the_pinned_release_is_refused_and_nothing_unpacked(tmp_path):
    env = stand_in_npm(tmp_path)
    dest = tmp_path / "nhsuk_frontend"

    result = fetch(dest, env)

    assert result.returncode == 1
    assert "does not match the pinned sha512" in result.stderr
    assert (tmp_path / "npm-calls").read_text().split() == [
        "pack",
        "--silent",
        "nhsuk-frontend@10.6.1",
    ]
    assert not dest.exists() and not Path(f"{dest}.new").exists()


def test_a_folder_holding_the_pinned_release_is_kept_without_asking_npm(tmp_path):
    env = stand_in_npm(tmp_path)
    dest = tmp_path / "nhsuk_frontend"
    dest.mkdir()
    pinned = next(
        line.split("=", 1)[1]
        for line in SCRIPT.read_text().splitlines()
        if line.startswith("SHA512=")
    )
    (dest / "VERSION").write_text(f"nhsuk-frontend 10.6.1 sha512:{pinned} without @font-face\n")

    result = fetch(dest, env)

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "npm-calls").exists()
