"""Engines and schema management (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from storage.records import StorageUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def json_dumps(value: Any) -> str:
    """JSON columns' text, written with orjson; it reads back as ``json.dumps``'s would."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def sqlite_file_missing(url: str) -> Path | None:
    """The SQLite file a URL names when it does not exist yet (``None`` otherwise)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path.resolve()


DbEngine = Engine
"""The engine type, for callers that hold one without using SQLAlchemy themselves."""


def safe_url(url: str) -> str:
    """A database URL as it may be shown: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def unavailable_as_storage_error() -> Iterator[None]:
    """Report a database that cannot be reached as :class:`StorageUnavailable`.

    Callers then handle one storage error, whatever the driver, without importing SQLAlchemy.
    """
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        # Drivers explain over several lines; one line reads better in a log and a terminal.
        raise StorageUnavailable(" ".join(str(getattr(exc, "orig", exc) or exc).split())) from exc


class SchemaOutdated(RuntimeError):
    """The database schema is not at the migrations' head."""


def make_engine(
    url: str, *, busy_timeout_ms: int = 10_000, auto_checkpoint: bool = True, **kwargs: Any
) -> Engine:
    """Create an engine for ``url`` with the settings each backend needs.

    SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout, and
    ``BEGIN IMMEDIATE`` for transactions opened with the ``write=True`` execution option (see
    :func:`writer`), so that two processes writing the same file queue up instead of failing
    half-way through a transaction; a writer waits up to ``busy_timeout_ms`` for the lock.
    With ``auto_checkpoint`` off, SQLite no longer copies the write-ahead log into the database
    file during a commit (which made every few hundredth answer several times slower); a
    :class:`Checkpointer` must then do it in the background.
    PostgreSQL: psycopg 3, connections checked before use (so the bot recovers by itself
    after the database restarts; see :func:`_still_connected`).
    """
    parsed = make_url(url)
    kwargs = {"json_serializer": json_dumps, "json_deserializer": orjson.loads, **kwargs}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The most recently returned connection is handed out first (LIFO): one process's
        # updates then run on one connection, whose page cache its own commits keep valid.
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, pool_use_lifo=True, **kwargs
        )

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
            if not auto_checkpoint:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
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
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", _still_connected)
    return engine


def _still_connected(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection whose server has closed it (the pool connects anew).

    A server that stops, restarts or ends a session closes its end: the idle connection's
    socket then has something to read though no query is out, which takes no round trip to see.
    ``DisconnectionError`` is the pool's documented signal to hand out a fresh connection.
    """
    gone = connection_gone(dbapi_connection)
    if gone is not None:
        raise DisconnectionError(gone)


def connection_gone(dbapi_connection: Any) -> str | None:
    """Why an idle psycopg connection can no longer be used, or ``None`` if it still can.

    Takes no round trip: see :func:`_still_connected` (the pool's check) for what it sees.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return "the connection is closed"
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    if poller.poll(0):
        return "the server has closed the connection"
    return None


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file from a background thread.

    Used with ``make_engine(..., auto_checkpoint=False)``: commits stay short, and the copying
    (SQLite releases the GIL while it does it) runs beside the event loop. Each round first
    copies what it can without blocking anyone (``PASSIVE``), then briefly holds writers back
    to copy the last few frames and let the next writer start the log afresh (``RESTART``):
    without that, a log written to without pause is never wholly copied and grows without
    bound. Several processes on one file may each run one. Use as a context manager: it
    starts, and on exit stops with a last checkpoint.
    """

    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def checkpoint(self) -> None:
        """One checkpoint now."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            cursor.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            self.checkpoints += 1
        except self.engine.dialect.loaded_dbapi.Error as exc:
            log.warning("WAL checkpoint failed (tried again later): %s", exc)
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.checkpoint()

    def __enter__(self) -> Checkpointer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.checkpoint()


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
    with unavailable_as_storage_error():
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
