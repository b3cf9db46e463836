"""`serve` caps glibc's malloc arenas (entrypoints/allocator.py): many short-lived threads
otherwise each take an arena of their own and the resident size climbs under load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# a process whose threads are all alive at once, each allocating through malloc, then counts
# the arenas malloc_info reports
THREADS_THEN_COUNT = """
import ctypes, sys, threading
from referral_gateway.entrypoints.allocator import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas(2)
together = threading.Barrier(12)
kept = []
def allocate():
    kept.append([bytearray(4096) for _ in range(64)])  # bytearrays of this size use malloc
    together.wait()
threads = [threading.Thread(target=allocate) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
"""


def arenas_after_twelve_threads(tmp_path: Path, mode: str) -> int:
    report = tmp_path / f"malloc-{mode}.xml"
    subprocess.run(
        [sys.executable, "-c", THREADS_THEN_COUNT, mode, str(report)],
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    return report.read_text().count("<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_capped_process_keeps_its_threads_on_two_arenas(tmp_path):
    # the same threads without the cap spread over more arenas (glibc allows 8 per core):
    # the count can see the difference
    assert arenas_after_twelve_threads(tmp_path, "default") > 2
    assert arenas_after_twelve_threads(tmp_path, "capped") <= 2
