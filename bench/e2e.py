"""End to end: full seed-trial screenings per chat through the real python-telegram-bot
``Application`` and the fake Bot API, for ours (here) and for the conventional
``ConversationHandler`` (:mod:`bench.baseline`), driven as :mod:`bench.driving` drives them.

Each configuration runs in a process of its own (so peak RSS is its own), as ``python -m bench``
runs them: ``python -m bench.e2e --mode ours --db sqlite --chats 1000`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.baseline import baseline
from bench.driving import ANSWER_STEPS, STALLS, dialogs
from bench.rss import peak_rss_mb
from tests.telegram_fake import FakeBotAPI

# --- ours --------------------------------------------------------------------------------------


async def ours(chats: int, db: str, rounds: int) -> dict[str, Any]:
    from bench.scratch import scratch_engine
    from bot.application import build_application
    from bot.runner import tune_garbage_collector
    from bot.service import ScreeningService
    from bot.settings import DEFAULT_CODE_PATTERN, Settings
    from flows import Catalog
    from flows.loader import BUNDLED_DIR, load_protocol
    from storage.db import Checkpointer, upgrade
    from storage.memory import InMemoryRepository
    from storage.records import Role, Staff
    from storage.repository import Repository
    from storage.sql import SqlRepository

    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    # The run's database, removed when the run ends, however it ends (after the application's
    # shutdown, which the block's own ``finally`` awaits first).
    with contextlib.ExitStack() as scratch:
        checkpointer: Any = contextlib.nullcontext()
        engine = None
        if db == "memory":
            pass  # the tests' fake repository: what the bot costs without any database
        elif db == "sqlite":
            # As the bot runs it (``container.build(serving=True)``): checkpoints in the background.
            engine = scratch.enter_context(scratch_engine("sqlite", auto_checkpoint=False))
            checkpointer = Checkpointer(engine)
        else:
            engine = scratch.enter_context(scratch_engine("postgres"))
        repo: Repository = InMemoryRepository()
        if engine is not None:
            upgrade(engine)
            repo = SqlRepository(engine)
        users = [100_000 + i for i in range(chats)]
        for user in users:
            repo.save_staff(Staff(user, f"U{user}", Role.COORDINATOR))
        service = ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN)
        api = FakeBotAPI()
        settings = Settings(
            bot_token="1:bench",
            # As configured in production: database calls in worker threads on PostgreSQL.
            database_url=str(engine.url) if engine is not None else "sqlite://",
            _env_file=None,
        )
        app = build_application(service, settings, request=api, rate_limit=False)
        await app.initialize()
        tune_garbage_collector()  # as bot.runner serves
        await app.start()
        try:
            with checkpointer:
                started = time.perf_counter()
                latencies = await dialogs(app, api, users, rounds)
                await app.stop()
                wall = time.perf_counter() - started
            signed = sum(
                1
                for u in users
                for r in range(rounds)
                if (s := repo.find_screening(f"S-{u}-{r}")) and s.close_kind == "signed"
            )
        finally:
            await app.shutdown()
        assert signed == chats * rounds, f"only {signed} of {chats * rounds} screenings completed"
        return {"latencies": latencies, "wall": wall}


# --- orchestration -----------------------------------------------------------------------------


def _p99(ordered: list[float]) -> float:
    """The 99th percentile of sorted values, as the run's p99 is taken."""
    return ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    updates = result.pop("latencies")
    answers = sorted(latency for index, latency in updates if index in ANSWER_STEPS)
    return {
        "updates": len(updates),
        "answers": len(answers),
        # Wall-clock, from the first update to the end of the application's stop: background
        # work (the pickle flushes) counts, as it blocks the event loop in production too.
        "answers_per_s": len(answers) / result["wall"],
        # Latency: the processing of one answer, from the update to the reply being sent.
        "p50_ms": statistics.median(answers) * 1000,
        "p99_ms": _p99(answers) * 1000,
        "max_loop_stall_ms": (STALLS[-1] * 1000) if STALLS else None,
        "peak_rss_mb": peak_rss_mb(),
        # PicklePersistence only: its update calls (which write the file), and their time.
        **{k: result[k] for k in ("persistence_calls", "persistence_s") if k in result},
    }


def one(mode: str, db: str, chats: int, rounds: int) -> dict[str, Any]:
    """One configuration's run, summarised."""
    if mode == "ours":
        raw = asyncio.run(ours(chats, db, rounds))
    else:
        raw = asyncio.run(baseline(chats, mode == "pickle", rounds))
    return {"mode": mode, "db": db if mode == "ours" else "-", "chats": chats, **summarise(raw)}


def rounds_for(chats: int) -> int:
    """Screenings per chat, so that every configuration times at least 2,600 answers."""
    return max(1, 100 // chats)


def run_alone(mode: str, db: str, chats: int) -> dict[str, Any]:
    """One configuration's run in a fresh process (so peak RSS is its own), summarised."""
    command = [sys.executable, "-m", "bench.e2e", "--mode", mode, "--db", db]
    command += ["--chats", str(chats), "--rounds", str(rounds_for(chats))]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["ours", "memory", "pickle"], required=True)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres", "memory", "-"])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(one(args.mode, args.db, args.chats, args.rounds)))


if __name__ == "__main__":
    main()
