"""Database calls can run in worker threads, so that one chat's wait for the database does not
hold up the others (the default on PostgreSQL, where every statement is a round trip)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import Engine
from telegram import Update

import bot.service as service_module
import flows
from bot.settings import Settings
from flows import Protocol
from storage.db import upgrade
from storage.records import Role, Staff, Visitor
from storage.sql import SqlRepository
from tests.bot_fixtures import ALICE, CHEN, BotWorld, start_world
from tests.test_bot import up_to_labs
from tests.test_ordering import HeldBotAPI, _message, _stop, _until


async def _slow_for_alice(
    world: BotWorld, seed: Protocol, threads: int, wait_s: float
) -> tuple[BotWorld, HeldBotAPI, threading.Event]:
    """The fixture's bot, started, whose database takes until released (or ``wait_s``) to
    tell who Alice is."""
    api = HeldBotAPI()
    held = await start_world(world.engine, seed, api=api, database_threads=threads)
    released = threading.Event()
    visitor = held.repo.visitor

    def slow_visitor(telegram_id: int, update_id: int) -> Visitor:
        if telegram_id == ALICE:
            released.wait(wait_s)  # a slow database round trip
        return visitor(telegram_id, update_id)

    held.repo.visitor = slow_visitor  # type: ignore[method-assign]
    await held.app.start()
    return held, api, released


async def _help_from_both(held: BotWorld) -> asyncio.Queue[object]:
    """Alice's /help, then Chen's, put on the update queue (as polling hands them over)."""
    queue = held.app.update_queue
    for user in (ALICE, CHEN):
        await queue.put(Update.de_json(_message(user, "/help"), held.app.bot))
    return queue


async def test_other_chats_are_answered_while_one_waits_for_the_database(
    world: BotWorld, seed: Protocol
) -> None:
    held, api, released = await _slow_for_alice(world, seed, threads=2, wait_s=10)
    queue = await _help_from_both(held)
    await _until(lambda: any(m["chat"]["id"] == CHEN for m in api.sent), api)
    assert not any(m["chat"]["id"] == ALICE for m in api.sent), "Alice's update still waits"
    released.set()
    await queue.join()
    assert [m["chat"]["id"] for m in api.sent] == [CHEN, ALICE]
    await _stop(held)


async def test_without_threads_the_database_is_called_on_the_event_loop(
    world: BotWorld, seed: Protocol
) -> None:
    # Nothing else runs while the loop waits for the database: Chen is answered after Alice.
    held, api, _ = await _slow_for_alice(world, seed, threads=0, wait_s=0.3)
    queue = await _help_from_both(held)
    await queue.join()
    assert [m["chat"]["id"] for m in api.sent] == [ALICE, CHEN]
    await _stop(held)


def _record_threads(held: BotWorld) -> list[str]:
    """The names of the threads the bot's repository reads its visitors from, in order."""
    names: list[str] = []
    visitor = held.repo.visitor

    def recorded(telegram_id: int, update_id: int) -> Visitor:
        names.append(threading.current_thread().name)
        return visitor(telegram_id, update_id)

    held.repo.visitor = recorded  # type: ignore[method-assign]
    return names


async def _busy_elsewhere(held: BotWorld) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Another chat's update, being processed until the event is set."""
    done = asyncio.Event()
    update = Update.de_json(_message(CHEN, "/help"), held.app.bot)
    processor = held.app.update_processor
    busy = asyncio.create_task(processor.process_update(update, done.wait()))
    while processor.current_concurrent_updates < 1:
        await asyncio.sleep(0)
    return done, busy


async def test_a_screening_with_a_correction_is_recorded_from_worker_threads(
    world: BotWorld, seed: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other tests' bots may still have threads of their own until they are collected: only
    # the threads this bot started are checked.
    before = set(threading.enumerate())
    held = await start_world(world.engine, seed, database_threads=2)
    names = _record_threads(held)
    engine_threads: list[str] = []
    real_step = flows.step

    def watched_step(*args: Any, **kwargs: Any) -> Any:
        engine_threads.append(threading.current_thread().name)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(service_module, "step", watched_step)
    done, busy = await _busy_elsewhere(held)  # so that the calls are handed over
    alice = held.chat(ALICE)
    await up_to_labs(alice, "THR-001")
    await alice.send("/back")
    await alice.press("Age: 45")
    await alice.send("46")
    await alice.press("Transcription error")
    assert "Creatinine" in alice.last_text()  # back where the screening was
    s = held.repo.find_screening("THR-001")
    assert s is not None
    ages = [a for a in held.repo.answers(s.id) if a.question_id == "age"]
    assert [(a.raw_text, a.status, a.change_reason) for a in ages] == [
        ("45", "superseded", "Transcription error"),
        ("46", "active", None),
    ]
    assert s.row_version == len(held.repo.audit_events("THR-001"))
    assert names and all(name.startswith("prescreen-db") for name in names), names
    # The engine works on the event loop; the threads only store.
    assert engine_threads and not any(n.startswith("prescreen-db") for n in engine_threads)
    ours = {t for t in threading.enumerate() if t.name.startswith("prescreen-db")} - before
    assert ours
    done.set()
    await busy
    await held.app.shutdown()
    assert held.errors == [], "a handler raised"
    assert held.app.post_shutdown is not None
    await held.app.post_shutdown(held.app)  # as run_polling and run_webhook do last
    assert not any(t.is_alive() for t in ours)


def test_threads_by_default_on_postgresql_only() -> None:
    values: dict[str, Any] = {"_env_file": None}
    assert Settings(database_url="sqlite:///x.sqlite3", **values).db_threads == 0
    assert Settings(database_url="postgresql+psycopg://h/db", **values).db_threads == 4
    assert Settings(database_url="postgresql://h/db", database_threads=0, **values).db_threads == 0
    assert (
        Settings(database_url="sqlite:///x.sqlite3", database_threads=3, **values).db_threads == 3
    )


async def test_two_coordinators_at_once_on_postgresql_by_default(
    postgres_engine: Engine, seed: Protocol
) -> None:
    # PostgreSQL's default: 4 threads, so the two chats' statements overlap for real.
    upgrade(postgres_engine)
    repo = SqlRepository(postgres_engine)
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_staff(Staff(CHEN, "Dr Chen", Role.INVESTIGATOR))
    url = postgres_engine.url.render_as_string(hide_password=False)
    held = await start_world(postgres_engine, seed, database_url=url)
    assert held.settings.db_threads == 4
    alice, chen = held.chat(ALICE), held.chat(CHEN, "Dr Chen")
    await asyncio.gather(up_to_labs(alice, "PGT-001"), up_to_labs(chen, "PGT-002"))
    for code in ("PGT-001", "PGT-002"):
        screening = held.repo.find_screening(code)
        assert screening is not None
        events = held.repo.audit_events(code)
        assert screening.row_version == len(events)
        assert [e.kind for e in events].count("answer_recorded") == 12
        assert "Creatinine" in (alice if code == "PGT-001" else chen).last_text()
    await held.app.shutdown()
    assert held.errors == [], "a handler raised"
    assert held.app.post_shutdown is not None
    await held.app.post_shutdown(held.app)
