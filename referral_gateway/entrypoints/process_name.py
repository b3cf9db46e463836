"""Names for `serve`'s child processes, as `ps -o comm`, `top` and `/proc/<pid>/comm` show
them: `rg-pipeline` and `rg-mllp` rather than three processes all called `python`."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_NAME = 15  # linux/prctl.h; the kernel keeps the first 15 bytes


def name_this_process(name: str) -> bool:
    """Set this process's name (its main thread's); False where that is not possible, which
    only means `ps` shows `python` as before."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return int(libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
