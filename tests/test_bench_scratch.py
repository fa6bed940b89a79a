"""The benchmarks' scratch databases and files are gone when a benchmark is done with them."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench.baseline import baseline
from bench.e2e import ours
from bench.scratch import scratch_engine


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of this test's own as the temporary folder, so that what is left shows."""
    root = tmp_path / "temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_sqlite_scratch_database_is_removed_with_its_folder(temp_root: Path) -> None:
    with scratch_engine("sqlite") as engine:
        with engine.begin() as c:
            c.execute(text("CREATE TABLE t (n integer)"))
            c.execute(text("INSERT INTO t VALUES (1)"))
        database = Path(str(engine.url.database))
        assert database.is_file() and database.parent.parent == temp_root
    assert list(temp_root.iterdir()) == []


def test_a_sqlite_scratch_database_is_removed_when_the_run_fails(temp_root: Path) -> None:
    with pytest.raises(RuntimeError, match="the run failed"), scratch_engine("sqlite") as engine:
        with engine.begin() as c:
            c.execute(text("CREATE TABLE t (n integer)"))
        raise RuntimeError("the run failed")
    assert list(temp_root.iterdir()) == []


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """The run tunes the garbage collector as the serving bot does: undone for later tests."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def _schemas(engine: Engine) -> set[str]:
    with engine.connect() as c:
        return {row[0] for row in c.execute(text("SELECT nspname FROM pg_namespace"))}


def test_a_postgres_scratch_schema_is_first_in_the_path_and_dropped(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PRESCREEN_BENCH_POSTGRES_URL", postgres_engine.url.render_as_string(hide_password=False)
    )
    before = _schemas(postgres_engine)
    with scratch_engine("postgres") as engine:
        with engine.begin() as c:
            c.execute(text("CREATE TABLE t (n integer)"))
            schema = c.execute(text("SELECT current_schema()")).scalar()
        assert schema in _schemas(postgres_engine) - before
    assert _schemas(postgres_engine) == before


@pytest.mark.usefixtures("collector_restored")
async def test_a_run_of_the_bot_on_sqlite_leaves_no_file_behind(temp_root: Path) -> None:
    run = await ours(chats=2, db="sqlite", rounds=1)
    assert len(run["latencies"]) > 0
    assert list(temp_root.iterdir()) == []


# The baseline's ConversationHandler mixes message and button handlers, as such bots do.
@pytest.mark.filterwarnings("ignore:If 'per_message=False'")
async def test_a_run_of_the_pickle_baseline_leaves_no_file_behind(temp_root: Path) -> None:
    run = await baseline(chats=2, pickle=True, rounds=1)
    assert run["persistence_calls"] > 0  # it did write its file
    assert list(temp_root.iterdir()) == []
