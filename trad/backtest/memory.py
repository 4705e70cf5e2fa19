"""Backtests reuse the memory of the last one's arrays (glibc's malloc).

A backtest allocates and frees a few arrays the length of its candles: eight bytes a candle
each, ~40 MB for a 1M-candle backtest in all. glibc's malloc hands the top of its heap back to
the kernel once more than its trim threshold is free there, a threshold it moves with the
blocks the process frees. While the heap's free holes hold a backtest's arrays, backtests take
no fresh pages; once the process's live data has grown into them (a Bayesian search's does with
every result it learns), every backtest extends the heap, frees the extension and has it
trimmed. In a 600-episode Bayesian search on 900,000 candles it began at episode ~400: from 0
to 10,690 fresh pages (42 MB) a backtest and from 55–80 ms to 85–110 ms, to the end — the job
slowed by a third mid-run, and its ETA could not know. With the thresholds fixed, 0 pages
and the first episodes' speed to the last.

`reuse_freed_memory()` fixes them in the calling process, and so in the processes it forks
(an RQ work horse, a search's worker processes): `trad worker` calls it at start.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt's parameters (malloc.h)
M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap and are reused: arrays of up to 4M candles. It is the
# ceiling of glibc's own moving threshold.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free memory at the heap's top kept for the next backtest rather than handed back: a few
# backtests' arrays. A worker keeps its peak, at most this much more, between episodes.
TRIM_THRESHOLD = 128 * 1024 * 1024
# Set by the person running trad: their choice stands.
MALLOC_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def reuse_freed_memory() -> bool:
    """Fix malloc's thresholds in this process; False where they were left alone (not glibc,
    or set already through MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_)."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in MALLOC_ENVIRONMENT):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    answers = [mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
    return all(answers)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def heap_free_bytes() -> int | None:
    """The bytes free in this process's heap (glibc's `mallinfo2().fordblks`), for the benches
    and tests that fill it; None where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return None
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().fordblks)
