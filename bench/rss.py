"""This process's peak resident memory."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """The peak resident set size of this process since it started, in MB.

    Read from ``/proc/self/status`` (``VmHWM``) where there is one: Linux carries
    ``getrusage``'s ``ru_maxrss`` across ``exec``, so a benchmark process started by a larger
    one would report its parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
