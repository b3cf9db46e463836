"""The C allocator's arenas for the long-running `serve` process.

glibc's malloc gives each thread that allocates its own arena, up to eight per core, and an
arena keeps freed memory for reuse rather than returning it. `serve` runs many short-lived
threads (the web framework's thread pool for database work, which lets idle workers go and
starts new ones; the intake writer; the alert senders), each landing on an arena of its own;
freed blocks scattered over many arenas are rarely reused and the resident size climbs while
the memory actually in use stays level. Under `bench/load.py` (2026-12-06) malloc's in-use
bytes stayed at 36 MiB while its free-but-kept bytes grew from 8 to 14 MiB in two minutes by
default, and stayed at 1-3 MiB with two arenas; see the README, "Reliability".

Setting `MALLOC_ARENA_MAX` in the environment works too, but only when set before the
process starts; `mallopt` applies it from inside, to every arena made afterwards."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # glibc's malloc.h
SERVE_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVE_ARENAS) -> bool:
    """Cap glibc's malloc at `arenas` arenas from now on; False where that is not glibc (or
    the call failed), which only means the default allocator behaviour stays."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
