"""What a process holds, read from /proc: used by the reliability suite and the SSE benchmark."""

from __future__ import annotations

import os


def proc_stats(pid: int) -> dict[str, int]:
    """RSS (kB), threads and open file descriptors of a process."""
    stats = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                stats["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                stats["threads"] = int(line.split()[1])
    stats["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return stats
