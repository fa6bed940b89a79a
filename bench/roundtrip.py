"""PostgreSQL's round trips on this machine: what any statement costs before the bot's own work.

``python -m bench.roundtrip`` (with PRESCREEN_BENCH_POSTGRES_URL set) times, on one connection
in autocommit, ``SELECT 1`` (one round trip) and a one-row insert into a logged table (a round
trip and the commit's wait for the server's log flush), ``--count`` times each, and prints
their medians; ``--readings`` repeats that, because some machines change speed from minute to
minute. The table lives in a schema of its own, dropped at the end.

These two figures bound the bot on PostgreSQL: an answer's write is at least one committed
insert, and the gate's read at least one round trip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from bench.scratch import scratch_engine

TABLE = "roundtrip_probe"


@dataclass(frozen=True)
class RoundTrips:
    """Medians, in µs, of one reading."""

    select_us: float
    insert_us: float


@contextmanager
def probe_connection(engine: Engine) -> Iterator[Any]:
    """A psycopg connection of ``engine`` in autocommit, with :data:`TABLE` created.

    In autocommit each statement is its own transaction, committed before its reply, as the
    bot's one-statement write is (``storage.one_statement``). The table is logged (not
    TEMPORARY, not UNLOGGED): its commits wait for the log flush.
    """
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        connection.autocommit = True
        connection.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, n integer)")
        yield connection
    finally:
        raw.close()


def measure(connection: Any, count: int) -> RoundTrips:
    """Time ``count`` of each statement on a psycopg ``connection`` in autocommit.

    The table :data:`TABLE` must exist in the connection's search path; each insert adds a row.
    """
    selects: list[float] = []
    inserts: list[float] = []
    with connection.cursor() as cursor:
        for _ in range(count):
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            selects.append(time.perf_counter() - started)
        for n in range(count):
            started = time.perf_counter()
            cursor.execute(f"INSERT INTO {TABLE} (n) VALUES (%s)", (n,))
            inserts.append(time.perf_counter() - started)
    return RoundTrips(statistics.median(selects) * 1e6, statistics.median(inserts) * 1e6)


def readings(count: int, times: int) -> list[RoundTrips]:
    """``times`` readings on PRESCREEN_BENCH_POSTGRES_URL, in a scratch schema dropped after."""
    with scratch_engine("postgres") as engine, probe_connection(engine) as connection:
        return [measure(connection, count) for _ in range(times)]


def main(argv: list[str] | None = None) -> None:
    """Print each reading's medians (nothing to do without PRESCREEN_BENCH_POSTGRES_URL)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="statements of each kind")
    parser.add_argument("--readings", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.environ.get("PRESCREEN_BENCH_POSTGRES_URL"):
        print("PostgreSQL round trips: PRESCREEN_BENCH_POSTGRES_URL is not set, nothing measured")
        return
    for index, reading in enumerate(readings(args.count, args.readings), 1):
        print(
            f"PostgreSQL round trips, reading {index} (medians of {args.count:,}): "
            f"SELECT 1 {reading.select_us:.0f} µs, "
            f"one-row insert committed {reading.insert_us:.0f} µs"
        )


if __name__ == "__main__":
    main()
