"""SQLite's write-ahead log is copied into the database file by a background thread."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from storage.db import Checkpointer, make_engine

ROWS = 1500  # each row fills most of a page: the log outgrows SQLite's 1,000-page default


def _write(engine_url: str, *, auto: bool, checkpointer_s: float | None) -> tuple[int, int, int]:
    """Write ROWS rows, one commit each; return the database and log sizes, and the count."""
    engine = make_engine(engine_url, auto_checkpoint=auto)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS blob (id INTEGER PRIMARY KEY, data TEXT)"))
    checkpointer = Checkpointer(engine, checkpointer_s) if checkpointer_s else None
    if checkpointer:
        checkpointer.__enter__()
    try:
        for _ in range(ROWS):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO blob (data) VALUES (:d)"), {"d": "x" * 3000})
            time.sleep(0.0002)  # the bot commits about once a millisecond, never back to back
    finally:
        if checkpointer:
            checkpointer.__exit__(None, None, None)
            assert checkpointer.checkpoints >= 2  # periodic ones and the last one
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM blob")).scalar_one()
    path = Path(engine_url.removeprefix("sqlite:///"))
    size, log = path.stat().st_size, Path(f"{path}-wal").stat().st_size
    engine.dispose()
    return size, log, count


def test_without_auto_checkpoint_the_log_stays_out_of_the_file(tmp_path: Path) -> None:
    size, log, count = _write(
        f"sqlite:///{tmp_path / 'a.sqlite3'}", auto=False, checkpointer_s=None
    )
    assert count == ROWS
    # Nothing was copied into the database file: the rows live in the log only.
    assert size < ROWS * 3000 / 10
    assert log > ROWS * 3000


def test_the_checkpointer_copies_the_log_into_the_file(tmp_path: Path) -> None:
    size, log, count = _write(
        f"sqlite:///{tmp_path / 'b.sqlite3'}", auto=False, checkpointer_s=0.01
    )
    assert count == ROWS
    assert size > ROWS * 3000
    # Written without pause, the log was still restarted after checkpoints, not grown.
    assert log < ROWS * 3000  # (without the restarts it grows past four times that)


def test_sqlite_checkpoints_by_itself_by_default(tmp_path: Path) -> None:
    size, _, count = _write(f"sqlite:///{tmp_path / 'c.sqlite3'}", auto=True, checkpointer_s=None)
    assert count == ROWS
    assert size > ROWS * 3000 / 2


def test_only_the_serving_bot_checkpoints_in_the_background(tmp_path: Path) -> None:
    from bot.container import build
    from bot.settings import Settings

    def autocheckpoint(serving: bool, seconds: float = 1.0) -> tuple[bool, int]:
        url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
        settings = Settings(database_url=url, sqlite_checkpoint_seconds=seconds, _env_file=None)
        container = build(settings, serving=serving)
        with container.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
        container.engine.dispose()
        return container.checkpointer is not None, pages

    assert autocheckpoint(True) == (True, 0)
    assert autocheckpoint(False) == (False, 1000)  # a CLI command: SQLite's own default
    assert autocheckpoint(True, seconds=0) == (False, 1000)


def test_after_an_overlap_updates_keep_to_one_connection(tmp_path: Path) -> None:
    # The checkpointer's connection overlapping an update leaves two in the pool; handing out
    # the most recently returned one keeps one process's updates on one connection (whose
    # page cache its own commits keep valid) instead of alternating between the two.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    first, second = engine.raw_connection(), engine.raw_connection()
    first.close()
    second.close()
    used = set()
    for _ in range(4):
        connection = engine.raw_connection()
        used.add(id(connection.dbapi_connection))
        connection.close()
    assert len(used) == 1
    engine.dispose()
