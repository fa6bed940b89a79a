"""The quick benchmark's own measurements: the heartbeat, and the floors it reports."""

from __future__ import annotations


async def test_the_heartbeat_measures_how_long_the_loop_was_blocked() -> None:
    import asyncio
    import time

    from bench.driving import Heartbeat

    async with Heartbeat() as beat:
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # a handler that blocks the loop
        await asyncio.sleep(0.01)
    assert beat.max_stall_s >= 0.04


def test_the_quick_run_reports_each_floor() -> None:
    from bench.quick import table

    result = {
        "chats": 1000,
        "answers_per_s": {
            "prescreen_sqlite": 700.0,
            "prescreen_postgres": None,
            "conversationhandler_memory": 3000.0,
            "picklepersistence": 330.0,
        },
        "p99_ms": {"prescreen_sqlite": 6.0, "prescreen_postgres": None},
        "max_loop_stall_ms": {"prescreen_sqlite": 4.0, "picklepersistence": 70.0},
    }
    text = table(result)
    assert "SQLite answers/s ≥ 600: met" in text
    assert "SQLite ≥ 2× PicklePersistence: met" in text
    assert "SQLite p99 ≤ 5 ms: MISSED" in text
    assert "PostgreSQL answers/s ≥ 300: not run" in text
    assert "| prescreen_postgres | — | — | — |" in text
