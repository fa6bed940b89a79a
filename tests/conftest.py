from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bench.scratch import postgres_schema
from flows import Protocol, load_protocol
from flows.loader import BUNDLED_DIR
from storage.db import make_engine, upgrade
from storage.memory import InMemoryRepository
from storage.repository import Repository
from storage.sql import SqlRepository

SEED_FILE = BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml"
POSTGRES_ENV = "PRESCREEN_TEST_POSTGRES_URL"
pytest_plugins = ["tests.bot_fixtures"]


@pytest.fixture(scope="session")
def seed() -> Protocol:
    return load_protocol(SEED_FILE)


class Clock:
    """A controllable clock: every reading advances one second, so order is unambiguous."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run sets it"
        )
    return url


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A migrated PostgreSQL schema of its own, dropped afterwards."""
    with postgres_schema(postgres_url(), "test_") as engine:
        yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'prescreen.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def repo(request: pytest.FixtureRequest, clock: Clock) -> Repository:
    """The same contract, against the fake and both databases."""
    if request.param == "memory":
        return InMemoryRepository(clock)
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    upgrade(engine)
    return SqlRepository(engine, clock)


@pytest.fixture(autouse=True)
def _own_data_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default database and reports folder live in the user's data folder: never the
    real one in tests."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
