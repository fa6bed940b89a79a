"""``bench.e2e --timers``: the repository's calls timed where the bot makes them."""

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
