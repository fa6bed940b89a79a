"""``python -m bench quick`` and ``python -m bench full``: the benchmark in one run, one table.

``quick`` drives the seed trial's dialog for ``--chats`` chats (1,000 by default) through the
real ``Application`` with the tests' fake Bot API, in four setups, each in a process of its
own: the bot on SQLite; the bot on PostgreSQL when ``PRESCREEN_BENCH_POSTGRES_URL`` is set;
a ``ConversationHandler`` in memory; and one with ``PicklePersistence(update_interval=1)``.
It prints a table, whether each floor is met, and as its last line one JSON object.
``full`` adds the resume list with 100,000 stored screenings, the export of 10,000
transcripts and memory over 10,000 screenings (``bench.storage``, ``bench.memory``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench.e2e import run_alone
from bench.floors import floor_line

FLOORS: dict[str, Callable[[dict[str, Any]], bool | None]] = {
    "SQLite answers/s ≥ 600": lambda r: _at_least(r["answers_per_s"]["prescreen_sqlite"], 600),
    "SQLite ≥ 2× PicklePersistence": lambda r: _at_least(
        r["answers_per_s"]["prescreen_sqlite"], 2 * r["answers_per_s"]["picklepersistence"]
    ),
    "SQLite p99 ≤ 5 ms": lambda r: _at_most(r["p99_ms"]["prescreen_sqlite"], 5),
    "SQLite event-loop stall ≤ 10 ms": lambda r: _at_most(
        r["max_loop_stall_ms"]["prescreen_sqlite"], 10
    ),
    "PostgreSQL answers/s ≥ 300": lambda r: _at_least(
        r["answers_per_s"]["prescreen_postgres"], 300
    ),
}


def _at_least(value: float | None, floor: float) -> bool | None:
    return None if value is None else value >= floor


def _at_most(value: float | None, ceiling: float) -> bool | None:
    return None if value is None else value <= ceiling


def quick(chats: int) -> dict[str, Any]:
    """Run the four setups and gather the figures the last line reports."""
    setups = {
        "prescreen_sqlite": ("ours", "sqlite"),
        "prescreen_postgres": ("ours", "postgres"),
        "conversationhandler_memory": ("memory", "-"),
        "picklepersistence": ("pickle", "-"),
    }
    runs: dict[str, dict[str, Any] | None] = {}
    for name, (mode, db) in setups.items():
        if db == "postgres" and not os.environ.get("PRESCREEN_BENCH_POSTGRES_URL"):
            runs[name] = None
            continue
        runs[name] = run_alone(mode, db, chats)
        print(f"{name}: {json.dumps(runs[name])}", file=sys.stderr)

    def field(name: str, key: str) -> float | None:
        run = runs[name]
        return None if run is None else float(run[key])

    return {
        "chats": chats,
        "answers_per_s": {name: field(name, "answers_per_s") for name in setups},
        "p99_ms": {
            name: field(name, "p99_ms") for name in ("prescreen_sqlite", "prescreen_postgres")
        },
        "max_loop_stall_ms": {
            name: field(name, "max_loop_stall_ms")
            for name in ("prescreen_sqlite", "picklepersistence")
        },
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table, then each floor met or missed."""
    lines = ["| setup | answers/s | p99 ms | longest loop stall ms |", "|---|---|---|---|"]
    for name, rate in result["answers_per_s"].items():
        p99 = result["p99_ms"].get(name)
        stall = result["max_loop_stall_ms"].get(name)
        lines.append(f"| {name} | {_fmt(rate, 0)} | {_fmt(p99, 2)} | {_fmt(stall, 1)} |")
    lines.append("")
    for floor, check in FLOORS.items():
        met = check(result)
        lines.append(f"{floor}: not run" if met is None else floor_line(floor, met))
    return "\n".join(lines)


def _fmt(value: float | None, places: int) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("what", choices=["quick", "full"], nargs="?", default="quick")
    parser.add_argument("--chats", type=int, default=1000)
    args = parser.parse_args()
    if args.what == "full":
        for part in (["bench.storage"], ["bench.memory"]):
            subprocess.run([sys.executable, "-m", *part], check=True)
    result = quick(args.chats)
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
