"""Memory over 10,000 completed screenings through the bot: peak RSS every 1,000.

``python -m bench.memory`` (SQLite file). The fake transport's record of what was sent is
cleared between rounds, so that only the bot's own memory is measured.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine

from bench.driving import drive
from bench.floors import MEMORY_GROWTH_MB, floor_line
from bench.rss import peak_rss_mb
from bench.scratch import scratch_engine
from bot.application import build_application
from bot.runner import tune_garbage_collector
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN, Settings
from flows import Catalog, Protocol
from flows.loader import BUNDLED_DIR, load_protocol
from storage.db import Checkpointer, upgrade
from storage.records import Role, Staff
from storage.sql import SqlRepository
from tests.telegram_fake import FakeBotAPI

CHATS, ROUNDS = 100, 100
SAMPLE_EVERY = 1000  # completed screenings between two readings of peak RSS


async def main_async() -> None:
    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    # As the bot runs it: checkpoints in a background thread.
    with scratch_engine("sqlite", auto_checkpoint=False) as engine:
        await screen(engine, seed)


async def screen(engine: Engine, seed: Protocol) -> None:
    """Complete the screenings on ``engine``'s empty database, printing peak RSS as they go."""
    upgrade(engine)
    repo = SqlRepository(engine)
    users = [100_000 + i for i in range(CHATS)]
    for user in users:
        repo.save_staff(Staff(user, f"U{user}", Role.COORDINATOR))
    api = FakeBotAPI()
    app = build_application(
        ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN),
        Settings(bot_token="1:memory", _env_file=None),
        request=api,
        rate_limit=False,
    )
    await app.initialize()
    tune_garbage_collector()  # as bot.runner serves
    samples: list[tuple[int, float]] = []
    with Checkpointer(engine):
        await rounds(app, api, users, samples)
    await app.shutdown()
    first, last = samples[0][1], samples[-1][1]
    print(f"growth from {samples[0][0]:,} to {samples[-1][0]:,} screenings: {last - first:+.0f} MB")
    floor = f"flat memory (at most {MEMORY_GROWTH_MB:g} MB more after {samples[-1][0]:,})"
    print(floor_line(floor, last - first <= MEMORY_GROWTH_MB))


async def rounds(
    app: Any, api: FakeBotAPI, users: list[int], samples: list[tuple[int, float]]
) -> None:
    """Complete ``ROUNDS`` screenings per chat, sampling peak RSS every ``SAMPLE_EVERY``."""
    for r in range(ROUNDS):
        await drive(app, api, users, rounds=1, first_round=r)
        api.forget()  # the fake Bot API's history is not the bot's memory
        if (r + 1) * CHATS % SAMPLE_EVERY == 0:
            samples.append(((r + 1) * CHATS, peak_rss_mb()))
            print(
                f"{(r + 1) * CHATS:6d} completed screenings: peak RSS {samples[-1][1]:.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main_async())
