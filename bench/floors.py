"""The floors of ``bench full``'s parts beyond the quick run (which checks its own in
:data:`bench.quick.FLOORS`), and how every part prints one."""

from __future__ import annotations

RESUME_P99_MS = 5.0
"""The resume list among 100,000 stored screenings, p99."""
EXPORT_S = 60.0
"""10,000 transcripts exported as ``prescreen export`` writes them (PDF, CSV and JSON)."""
MEMORY_GROWTH_MB = 10.0
"""Flat memory: peak RSS grows by at most this much from 1,000 to 10,000 screenings."""


def floor_line(floor: str, met: bool) -> str:
    """One floor, met or missed, as every part of the benchmark prints it."""
    return f"{floor}: {'met' if met else 'MISSED'}"
