"""How steady the machine itself is: one fixed piece of pure-Python work, timed over and over.

The p99 targets are a few milliseconds. On a shared virtual machine the same work sometimes
runs much slower for a while, whatever the code does. This times one loop of fixed work
(about 0.6 ms on machine D) again and again for ``--seconds`` and prints the spread. If the slowest
1 % of those slices are far above the median, an answer's p99 is too, by about the same
factor.
"""

from __future__ import annotations

import argparse
import time

WORK = 20_000  # additions per slice


def slices(seconds: float) -> list[float]:
    """Time the fixed work repeatedly for ``seconds``; each slice's time in microseconds."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        total = 0
        for i in range(WORK):
            total += i
        times.append((time.perf_counter() - started) * 1e6)
    return sorted(times)


def main() -> None:
    """Print the slices' median, p99 and the share of slow ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    times = slices(parser.parse_args().seconds)
    n = len(times)
    median = times[n // 2]
    slow = sum(t > 1.5 * median for t in times) / n
    print(
        f"machine steadiness: {n} slices of fixed work, p50 {median:.0f} µs, "
        f"p99 {times[int(n * 0.99)]:.0f} µs ({times[int(n * 0.99)] / median:.1f}× the median), "
        f"{100 * slow:.1f} % of them over 1.5× the median"
    )


if __name__ == "__main__":
    main()
