"""Engines and schema management (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutdated(RuntimeError):
    """The database schema is not at the migrations' head."""


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings each backend needs.

    SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout, and
    ``BEGIN IMMEDIATE`` for transactions opened with the ``write=True`` execution option (see
    :func:`writer`), so that two processes writing the same file queue up instead of failing
    half-way through a transaction; a writer waits up to ``busy_timeout_ms`` for the lock.
    PostgreSQL: psycopg 3, connections checked before use (so the bot recovers by itself
    after the database restarts).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own transaction handling is switched off; SQLAlchemy's begin
            # event below issues BEGIN IMMEDIATE instead (the documented pysqlite recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # Writers take the write lock at once (so two of them queue instead of one failing
            # half-way); readers never wait for it (WAL lets them read alongside a writer).
            write = connection.get_execution_options().get("write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def writer(engine: Engine) -> Engine:
    """The engine for write transactions: on SQLite they take the write lock when they begin."""
    return engine.execution_options(write=True)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` when empty)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest migration."""
    return ScriptDirectory.from_config(
        _alembic_config(create_engine("sqlite://"))
    ).get_current_head()


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make sure the schema is current.

    Args:
        engine: The database.
        auto_upgrade: Migrate when behind (the default for SQLite, so that ``make run`` needs no
            manual step). Otherwise an outdated schema is refused.

    Raises:
        SchemaOutdated: The schema is behind and ``auto_upgrade`` is off.
    """
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if auto_upgrade:
        upgrade(engine)
        return
    raise SchemaOutdated(
        f"the database schema is at {current or 'nothing (empty database)'} but this version "
        f"needs {head}: run `prescreen db upgrade` first"
    )
