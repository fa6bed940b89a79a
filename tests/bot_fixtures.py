"""A bot wired as in production, on an SQLite file, talking to the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from telegram.ext import Application

from bot.application import build_application
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN, Settings
from flows import Catalog, Protocol
from storage.clock import utc_now
from storage.db import make_engine, upgrade
from storage.records import Role, Staff
from storage.sql import SqlRepository
from tests.telegram_fake import Chat, FakeBotAPI

ALICE, CHEN, ADMIN, STRANGER = 1001, 2002, 3003, 4004


@dataclass
class BotWorld:
    engine: Engine
    repo: SqlRepository
    service: ScreeningService
    settings: Settings
    api: FakeBotAPI
    app: Application[Any, Any, Any, Any, Any, Any]
    errors: list[BaseException] = field(default_factory=list)

    def chat(self, user_id: int, name: str = "Alice", lang: str = "en") -> Chat:
        return Chat(self.app, self.api, user_id, name, lang)


async def start_world(
    engine: Engine,
    seed: Protocol,
    *,
    rate_limit: bool = False,
    api: FakeBotAPI | None = None,
    clock: Callable[[], datetime] = utc_now,
    catalog: Catalog | None = None,
    **settings_values: Any,
) -> BotWorld:
    repo = SqlRepository(engine)
    service = ScreeningService(repo, catalog or Catalog((seed,)), DEFAULT_CODE_PATTERN)
    settings = Settings(bot_token="123456:TEST", _env_file=None, **settings_values)
    api = api or FakeBotAPI()
    app = build_application(service, settings, request=api, rate_limit=rate_limit, clock=clock)
    world = BotWorld(engine, repo, service, settings, api, app)

    async def record_error(update: object, context: Any) -> None:
        world.errors.append(context.error)

    app.add_error_handler(record_error)
    await app.initialize()
    return world


@pytest.fixture
async def world(tmp_path: Path, seed: Protocol) -> AsyncIterator[BotWorld]:
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    upgrade(engine)
    repo = SqlRepository(engine)
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_staff(Staff(CHEN, "Dr Chen", Role.INVESTIGATOR))
    repo.save_staff(Staff(ADMIN, "Admin", Role.ADMIN))
    world = await start_world(engine, seed)
    yield world
    await world.app.shutdown()
    assert world.errors == [], "a handler raised"
    engine.dispose()
