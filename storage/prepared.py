"""Statements compiled once per dialect and run on the driver's cursor.

Every answer runs the same handful of statements. SQLAlchemy Core builds a statement object,
computes its cache key and looks up its compiled form on every call; profiling showed that this
cost several times what SQLite itself spends on the statement. So the statements on the hot
path are written once against the SQLModel tables, compiled once for the engine's dialect, and
executed on the DBAPI cursor of the SQLAlchemy connection (inside its transaction), converting
values with the column types' own bind and result processors. The SQL is SQLAlchemy's, so it
stays in step with the tables and the dialect.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from storage.db import connection_gone

Processor = Callable[[Any], Any] | None
_NOTHING = object()


def _remembering(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` with its last conversion remembered (for immutable values only)."""
    last: list[tuple[Any, Any]] = [(_NOTHING, None)]

    def process(value: Any) -> Any:
        seen, converted = last[0]  # one tuple, read and replaced whole: safe across threads
        if value is seen:
            return converted
        converted = convert(value)
        last[0] = (value, converted)
        return converted

    return process


class Processors:
    """Bind processors for one dialect's statements, shared among them.

    Timestamps' processors remember their last conversion: a transaction binds its one
    timestamp to several statements (the update claimed, the answer, each audit event, the
    screening row), and converting it (to UTC, then to SQLite's text) anew for each cost
    more than running some of those statements.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._timestamps: dict[str, Processor] = {}

    def bind(self, type_: TypeEngine[Any]) -> Processor:
        """The bind processor of ``type_`` (``None``: the driver takes values as they are)."""
        processor = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
        impl = getattr(type_, "impl", type_)  # a TypeDecorator's underlying type
        if processor is None or not isinstance(impl, DateTime):
            return processor
        # Types that print alike convert alike (``UTCDateTime(timezone=True)``).
        shared = self._timestamps.get(repr(type_))
        if shared is None:
            shared = self._timestamps[repr(type_)] = _remembering(processor)
        return shared


@dataclass(frozen=True, slots=True)
class Prepared:
    """One compiled statement.

    Attributes:
        sql: The statement in the driver's parameter style.
        names: Parameter names in positional order, or ``None`` for named parameters.
        binds: Each parameter's bind processor (``None`` where the driver takes the value
            as it is).
        columns: Result column names, in order (empty for statements without rows).
        results: Each result column's processor.
        error: The driver's base exception (its errors are re-raised as SQLAlchemy's, as
            Core would, so that callers handle one family of exceptions).
        constants: The values of the literals written into the statement (``status =
            'active'``), which SQLAlchemy also passes as parameters.
    """

    sql: str
    names: tuple[str, ...] | None
    binds: Mapping[str, Processor]
    columns: tuple[str, ...]
    results: tuple[Processor, ...]
    error: type[Exception]
    constants: Mapping[str, Any]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for ``values`` (processed by their column types)."""
        if self.constants:
            values = {**self.constants, **values}
        binds = self.binds
        if self.names is None:
            return {
                name: value if (proc := binds.get(name)) is None else proc(value)
                for name, value in values.items()
            }
        # A parameter used twice in the statement appears twice in ``names``.
        return [
            value if (proc := binds[name]) is None else proc(value)
            for name in self.names
            for value in (values[name],)
        ]

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        """A result row as a dict of processed values."""
        return {
            name: value if proc is None else proc(value)
            for name, proc, value in zip(self.columns, self.results, raw, strict=True)
        }

    def execute(self, cursor: Any, **values: Any) -> Any:
        """Run the statement on a DBAPI cursor; returns the cursor."""
        parameters = self.parameters(values)
        try:
            cursor.execute(self.sql, parameters)
        except self.error as exc:
            raise DBAPIError.instance(self.sql, parameters, exc, self.error) from exc
        return cursor

    def execute_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set."""
        parameters = [self.parameters(r) for r in rows]
        try:
            cursor.executemany(self.sql, parameters)
        except self.error as exc:
            raise DBAPIError.instance(self.sql, parameters, exc, self.error) from exc

    def all(self, cursor: Any, **values: Any) -> list[dict[str, Any]]:
        """Run a query and return its rows."""
        self.execute(cursor, **values)
        try:
            return [self.row(r) for r in cursor.fetchall()]
        except self.error as exc:  # in a pipeline, this statement's or an earlier one's
            raise DBAPIError.instance(self.sql, None, exc, self.error) from exc

    def first(self, cursor: Any, **values: Any) -> dict[str, Any] | None:
        """Run a query and return its first row, if any."""
        self.execute(cursor, **values)
        return self.fetched(cursor)

    def fetched(self, cursor: Any) -> dict[str, Any] | None:
        """The first row of this statement's result, last run on ``cursor``, if any.

        In a :func:`pipelined` block this waits for the replies to everything sent so far,
        and raises the first error among them (that of an earlier statement, maybe).
        """
        try:
            raw = cursor.fetchone()
        except self.error as exc:
            raise DBAPIError.instance(self.sql, None, exc, self.error) from exc
        return None if raw is None else self.row(raw)


def prepare(
    statement: ClauseElement,
    dialect: Dialect,
    returning: Sequence[ColumnElement[Any]] = (),
    processors: Processors | None = None,
) -> Prepared:
    """Compile ``statement`` for ``dialect`` with its parameters' and columns' processors.

    Args:
        statement: A Core statement; its parameters are its ``bindparam`` names (a
            ``bindparam`` in ``values()`` takes its column's type).
        dialect: The engine's dialect.
        returning: The columns of an ``INSERT … RETURNING`` (a query's own columns are used
            otherwise).
        processors: Bind processors shared with the statements run in the same transactions
            (of ``dialect``); the statement's own otherwise.
    """
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    processors = processors or Processors(dialect)
    binds = {name: processors.bind(bind.type) for bind, name in compiled.bind_names.items()}
    names = tuple(compiled.positiontup or ()) if compiled.positional else None
    columns: tuple[str, ...] = ()
    results: tuple[Processor, ...] = ()
    selected = list(getattr(statement, "selected_columns", returning))
    if selected:
        columns = tuple(c.key for c in selected)
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected
        )
    constants = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    error = dialect.loaded_dbapi.Error
    return Prepared(str(compiled), names, binds, columns, results, error, constants)


class _KeptConnections:
    """Driver connections kept for prepared blocks, outside the engine's pool.

    Every update runs a block for the gate's read and another for its write; through
    SQLAlchemy's pool each cost a checkout and a check-in (its queue, its events, and the
    rollback with which it resets a returned connection), on PostgreSQL also switching
    psycopg's autocommit on for the block and off again for the pool's other users, and a new
    cursor. In profiles that was about a twentieth of an answer's time on SQLite, and on
    PostgreSQL half the client's time for the gate's read (145 µs of CPU against 75 µs for
    the same query on a kept cursor). A connection is taken from the pool once, detached
    from it (the pool's public ``detach``: it is then closed, not returned, when done), and
    kept here between blocks, the most recently returned handed out first (on SQLite: one
    process's updates on one connection, whose page cache its own commits keep valid).

    A PostgreSQL connection stays in autocommit here (a read is its one query; a write block
    leaves it for the block, see :func:`driver_connection`), and keeps its cursor. Before one
    is handed out it gets the pool's own check (:func:`storage.db.connection_gone`, no round
    trip): one the server has closed (a restart) is closed and another taken or opened.

    :func:`driver_connection` ends every block's transaction, so a connection comes back
    with none open; one whose rollback failed, or that is broken, is closed instead.
    ``Engine.dispose()`` closes the kept connections (``engine_disposed``), and one out at
    that moment is closed as it comes back. Several threads may take and return connections
    at once: ``list.pop`` and ``list.append`` are atomic.
    """

    # Kept at the most; more come back only after a burst of threads (closed then).
    KEEP = 8

    def __init__(self, engine: Engine) -> None:
        # No reference to the engine is kept: it is the key of the keepers' weak dictionary.
        self.postgresql = engine.dialect.name == "postgresql"
        # (DBAPI connection, its kept cursor or None), the most recently returned last.
        self.idle: list[tuple[Any, Any]] = []
        self.generation = 0  # the number of disposals: what was out before one is closed
        event.listen(engine, "engine_disposed", self.dispose)

    def take(self, engine: Engine) -> tuple[Any, Any, int]:
        """A connection with no transaction open, its kept cursor, and its generation."""
        generation = self.generation
        connection: Any
        cursor: Any
        while self.idle:
            try:
                connection, cursor = self.idle.pop()
            except IndexError:  # another thread took the last one meanwhile
                break
            if not self.postgresql or connection_gone(connection) is None:
                return connection, cursor, generation
            connection.close()
        error = engine.dialect.loaded_dbapi.Error
        try:
            proxy = engine.raw_connection()  # the engine's ``connect`` set-up and checks
        except error as exc:  # the database cannot be reached (Core raises the same)
            raise DBAPIError.instance("connect", None, exc, error) from exc
        proxy.detach()
        connection = proxy.dbapi_connection
        cursor = None
        if self.postgresql:
            connection.autocommit = True  # outside a transaction: the pool hands none out
            cursor = connection.cursor()
        return connection, cursor, generation

    def give(self, connection: Any, cursor: Any, generation: int) -> None:
        """Keep a connection whose block has ended its transaction (closed if not wanted)."""
        if generation == self.generation and len(self.idle) < self.KEEP:
            self.idle.append((connection, cursor))
        else:
            connection.close()

    def dispose(self, _engine: Engine | None = None) -> None:
        """Close the kept connections, and each one out now as it comes back."""
        self.generation += 1
        while self.idle:
            self.idle.pop()[0].close()


_KEPT: weakref.WeakKeyDictionary[Engine, _KeptConnections] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def _kept_connections(engine: Engine) -> _KeptConnections:
    kept = _KEPT.get(engine)
    if kept is None:
        with _KEPT_LOCK:  # two threads' first blocks: one keeper
            kept = _KEPT.get(engine)
            if kept is None:
                kept = _KEPT[engine] = _KeptConnections(engine)
    return kept


def driver_connection(engine: Engine, *, write: bool = False) -> AbstractContextManager[Any]:
    """A driver connection for prepared statements; yields a cursor.

    With ``write`` the block is one transaction, committed at its end and rolled back if it
    raises; on SQLite it begins with ``BEGIN IMMEDIATE`` (as :func:`storage.db.writer` does for
    Core) so that concurrent writers queue for the lock instead of failing half-way. Without,
    each statement reads the latest committed data, in autocommit: SQLite's connections are
    always in it (the engine's ``BEGIN`` only starts Core's transactions), and so are the
    PostgreSQL connections kept for these blocks. Under PostgreSQL's READ COMMITTED each
    statement sees what was committed when it began, in a transaction or not; outside one, a
    read costs no ``BEGIN`` and no ``ROLLBACK``: its query is its one round trip. A write of
    one statement may run here too: outside a transaction the statement is its own,
    committed before its reply (``storage.one_statement``). A write of several statements on
    PostgreSQL runs them in :func:`pipelined` blocks.

    The connection is one kept for these blocks (:class:`_KeptConnections`). A driver error
    is raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``), as Core raises it.
    """
    kept = _kept_connections(engine)
    connection, cursor, generation = kept.take(engine)
    error = engine.dialect.loaded_dbapi.Error
    return _kept_block(kept, connection, cursor, generation, write, error)


@contextmanager
def _kept_block(
    kept: _KeptConnections,
    connection: Any,
    cursor: Any,
    generation: int,
    write: bool,
    error: type[Exception],
) -> Iterator[Any]:
    """:func:`driver_connection`'s block on a kept connection, given back at its end."""
    postgresql = kept.postgresql
    if not postgresql:
        # A new cursor each block: an SQLite cursor left with rows unread would hold its read
        # transaction open, and with it the snapshot and the write-ahead log.
        cursor = connection.cursor()
    try:
        if write:
            if postgresql:
                # psycopg begins the transaction with the first statement (:func:`pipelined`
                # sends the BEGIN along with the statements) and switches autocommit back on
                # once it ends (``finally``, below).
                connection.autocommit = False
            else:
                cursor.execute("BEGIN IMMEDIATE")
        yield cursor
        if write:
            connection.commit()
    except BaseException as exc:
        try:
            connection.rollback()  # a no-op outside a transaction
        except error:
            generation = -1  # its transaction's state is unknown: closed, not kept
        if isinstance(exc, error):  # BEGIN, COMMIT, or a cursor call of the block
            what = "COMMIT" if postgresql else "BEGIN IMMEDIATE … COMMIT"
            raise DBAPIError.instance(what, None, exc, error) from exc
        raise
    finally:
        try:
            if postgresql:
                if connection.broken or connection.info.transaction_status.name != "IDLE":
                    generation = -1  # lost, or a transaction still open: not kept
                elif not connection.autocommit:
                    connection.autocommit = True
            else:
                cursor.close()
                cursor = None
        except error:  # the connection is gone (the block's own error is the one raised)
            generation = -1
        kept.give(connection, cursor, generation)


@contextmanager
def pipelined(cursor: Any) -> Iterator[None]:
    """Statements sent to PostgreSQL without waiting for each one's reply, until the block ends.

    psycopg's pipeline mode. A write takes a handful of statements, and on PostgreSQL each
    used to be a round trip of its own (``BEGIN`` included). In the block, a statement is only
    sent; the replies come back together when a row is fetched (:meth:`Prepared.fetched`)
    or when the block ends, and so do the errors: a statement's error is raised there, by
    whichever fetch comes next, and the statements after it are not run. A check of a
    statement's ``rowcount`` therefore belongs after the block. On SQLite (whose driver has
    no pipeline) every statement runs as it is sent and the block changes nothing.

    Used first thing in a :func:`driver_connection` write block, it also begins the
    transaction: psycopg would send its own ``BEGIN`` and wait for the reply before the
    block's first statement; sent as a statement of the block, it travels with them. psycopg
    commits and rolls back by the server's transaction status, so the write block ends the
    transaction as usual.
    """
    connection = cursor.connection
    enter = getattr(connection, "pipeline", None)
    if enter is None:
        yield
        return
    begin = not connection.autocommit and connection.info.transaction_status.name == "IDLE"
    if begin:
        connection.autocommit = True  # as a kept connection is between blocks
    # An error collected as the block ends is the driver's: :func:`driver_connection` wraps it
    # as SQLAlchemy's (and does not keep a lost connection) as it rolls back.
    with enter():
        if begin:
            cursor.execute("BEGIN")
        yield
