"""``bench.e2e --timers`` (repository calls timed where the bot makes them) and ``--steps``."""

from __future__ import annotations

import time

import pytest

from bench.e2e import CallTimers
from storage.memory import InMemoryRepository
from storage.records import Role, Staff
from storage.repository import Repository


def test_timers_count_each_call_and_leave_results_and_errors_unchanged() -> None:
    repo = InMemoryRepository()
    repo.save_staff(Staff(7, "Alice", Role.COORDINATOR))

    def seen_update(update_id: int) -> bool:
        raise ValueError(update_id)

    repo.seen_update = seen_update  # type: ignore[method-assign]
    timers = CallTimers()
    timers.attach(repo)

    first = repo.visitor(7, update_id=1)
    assert first.staff is not None and first.staff.display_name == "Alice"
    assert repo.visitor(8, update_id=2).staff is None
    assert repo.get_screening(12345) is None
    with pytest.raises(ValueError):  # an error still reaches the caller, and the call counts
        repo.seen_update(3)

    summary = timers.summary(updates=2)
    assert summary["visitor"]["calls"] == 2
    assert summary["get_screening"]["calls"] == 1
    assert summary["seen_update"]["calls"] == 1
    # Methods never called are left out; the per-update figure divides by the run's updates.
    assert "save_staff" not in summary
    visitor = summary["visitor"]
    assert visitor["us_per_update"] == pytest.approx(visitor["us_per_call"])


def test_timers_wrap_every_method_of_the_interface_on_that_object_only() -> None:
    repo, other = InMemoryRepository(), InMemoryRepository()
    CallTimers().attach(repo)
    public = [n for n in dir(Repository) if not n.startswith("_")]
    assert public and all(n in vars(repo) for n in public)
    assert not any(n in vars(other) for n in public)


def test_a_slow_call_shows_its_time() -> None:
    repo = InMemoryRepository()
    timers = CallTimers()
    slow = repo.get_staff

    def get_staff(telegram_id: int) -> Staff | None:
        time.sleep(0.02)
        return slow(telegram_id)

    repo.get_staff = get_staff  # type: ignore[method-assign]
    timers.attach(repo)
    repo.get_staff(1)
    assert timers.summary(updates=1)["get_staff"]["us_per_call"] >= 20_000


def test_steps_give_each_steps_latencies_and_where_the_slowest_answers_fall() -> None:
    from bench.e2e import ANSWER_STEPS, SCRIPT, by_step

    last = len(SCRIPT) - 1
    # 100 screenings: every answer takes 1 ms, except step 3's, which take 5 ms in 2 of them;
    # the command and the signature take 9 ms, and are not answers.
    updates = [
        (index, 0.009 if index in (0, last) else 0.005 if index == 3 and n < 2 else 0.001)
        for n in range(100)
        for index in range(len(SCRIPT))
    ]
    rows = {row["step"]: row for row in by_step(updates)}
    assert sorted(rows) == list(range(len(SCRIPT)))
    assert rows[3]["update"] == " ".join(SCRIPT[3])
    assert rows[3]["p50_ms"] == pytest.approx(1.0)
    assert rows[3]["p99_ms"] == pytest.approx(5.0)
    assert rows[0]["p50_ms"] == pytest.approx(9.0)
    # 2,600 answers: the p99 is the 2,574th smallest, 1 ms, which every answer reaches.
    assert sum(row["slowest"] for row in rows.values()) == 100 * len(ANSWER_STEPS)
    assert rows[0]["slowest"] == rows[last]["slowest"] == 0


def test_steps_count_only_answers_at_or_over_the_runs_p99() -> None:
    from bench.e2e import SCRIPT, by_step

    # 10 screenings; step 5's answers take 2 ms in all of them, every other answer 1 ms.
    updates = [
        (index, 0.002 if index == 5 else 0.001) for _ in range(10) for index in range(len(SCRIPT))
    ]
    rows = {row["step"]: row for row in by_step(updates)}
    # 260 answers: the p99 is the 257th smallest, one of step 5's ten, and only they reach it.
    assert rows[5]["slowest"] == 10
    assert all(row["slowest"] == 0 for step, row in rows.items() if step != 5)


async def test_the_heartbeat_measures_how_long_the_loop_was_blocked() -> None:
    import asyncio
    import time

    from bench.e2e import Heartbeat

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
