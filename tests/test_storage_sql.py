"""SQL-specific storage behaviour: migrations, tampering, concurrency, privacy."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from flows import (
    Answer,
    AnswerRecorded,
    AnswerRetired,
    Decision,
    DecisionRecorded,
    DecisionWithdrawn,
    GoBack,
    Protocol,
    step,
)
from storage.audit import verify_entries
from storage.db import (
    SchemaOutdated,
    connection_gone,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
    upgrade,
)
from storage.one_statement import shape_of, touches_rows_once
from storage.prepared import driver_connection, pipelined
from storage.records import DuplicateUpdate, Role, Screening, Staff, StaleWrite
from storage.sql import SqlRepository, resume_list_query
from tests.conftest import Clock
from tests.test_repository_contract import ALICE, answer, answer_all, begin

ENGINES = ["sqlite_engine", "postgres_engine"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue(request.param)
    return engine


def test_upgrade_from_empty_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_downgrade_to_empty_and_up_again(engine: Engine) -> None:
    from alembic import command

    from storage.db import _alembic_config

    upgrade(engine)
    command.downgrade(_alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert "screening" not in inspect(engine).get_table_names()
    upgrade(engine, "0001")
    ensure_schema(engine, auto_upgrade=True)  # 0001 → head, as an existing deployment would
    assert current_revision(engine) == head_revision()


def test_outdated_schema_is_refused_unless_upgrading(engine: Engine) -> None:
    with pytest.raises(SchemaOutdated, match="prescreen db upgrade"):
        ensure_schema(engine, auto_upgrade=False)
    ensure_schema(engine, auto_upgrade=True)
    ensure_schema(engine, auto_upgrade=False)  # now current: no error


def test_no_column_can_hold_a_patient_identity(engine: Engine) -> None:
    upgrade(engine)
    columns = {
        (t, c["name"])
        for t in inspect(engine).get_table_names()
        for c in inspect(engine).get_columns(t)
    }
    personal = [
        tc
        for tc in columns
        if tc[0] != "staff_member"
        and any(word in tc[1] for word in ("name", "birth", "dob", "patient", "phone", "address"))
    ]
    assert personal == []


@pytest.fixture
def sql_repo(engine: Engine, clock: Clock) -> SqlRepository:
    upgrade(engine)
    return SqlRepository(engine, clock)


def tamper(engine: Engine, sql: str) -> None:
    with engine.begin() as connection:
        for statement in sql.split(";"):
            connection.execute(text(statement))


@pytest.mark.parametrize(
    ("sql", "broken_at", "problem"),
    [
        ('UPDATE audit_event SET payload = \'{"question": "age"}\' WHERE seq = 3', 3, "altered"),
        ("DELETE FROM audit_event WHERE seq = 4", 4, "missing"),
        # renumbered to open a gap (in two steps: (code, seq) is unique)
        (
            "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 5;"
            "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1000",
            5,
            "missing",
        ),
    ],
)
def test_tampering_is_detected(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, sql: str, broken_at: int, problem: str
) -> None:
    s = answer_all(sql_repo, seed, begin(sql_repo, seed))
    assert verify_entries(s.code, sql_repo.audit_events(s.code)).ok
    tamper(engine, sql)
    report = verify_entries(s.code, sql_repo.audit_events(s.code))
    assert not report.ok
    assert report.broken_at == broken_at
    assert problem in (report.problem or "")


def test_inserted_event_is_detected(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine
) -> None:
    s = answer_all(sql_repo, seed, begin(sql_repo, seed))
    events = sql_repo.audit_events(s.code)
    tamper(
        engine,
        "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 6;"
        "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1000",
    )
    forged = events[5]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_event (screening_code, seq, kind, payload, actor, at, "
                "prev_hash, hash) VALUES (:c, 6, 'answer_recorded', '{}', 1, :at, :p, :h)"
            ),
            {
                "c": s.code,
                "at": forged.at.replace(tzinfo=None),
                "p": forged.prev_hash,
                "h": forged.hash,
            },
        )
    report = verify_entries(s.code, sql_repo.audit_events(s.code))
    assert not report.ok and report.broken_at == 6


@pytest.mark.parametrize("other_read_it", [False, True])
def test_concurrent_writers_one_wins_the_other_is_told(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, clock: Clock, other_read_it: bool
) -> None:
    """Two processes answer the same question of the same screening at the same moment.

    The second has the row read itself, or not: on PostgreSQL both then write the step in one
    statement, or one does and the other statement by statement.
    """
    s = begin(sql_repo, seed)
    other = SqlRepository(engine, clock)  # a second "process": its own repository
    if other_read_it:
        assert other.get_screening(s.id) == s
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write(repo: SqlRepository, value: bool) -> Callable[[], None]:
        def run() -> None:
            event = Answer("consent_signed", value)
            result = step(seed, s.state, event)
            barrier.wait()
            try:
                repo.record_step(s, event, result, actor=ALICE)
                outcomes.append("ok")
            except StaleWrite:
                outcomes.append("stale")

        return run

    threads = [
        threading.Thread(target=write(sql_repo, True)),
        threading.Thread(target=write(other, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "stale"]
    after = sql_repo.get_screening(s.id)
    assert after is not None and after.row_version == 2
    assert len(sql_repo.answers(s.id)) == 1
    assert verify_entries(s.code, sql_repo.audit_events(s.code)).ok


def test_another_process_write_is_read_not_the_decoded_copy(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, clock: Clock
) -> None:
    """The gate reuses screenings this process decoded; another process's write is seen."""
    sql_repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    s = answer(sql_repo, seed, begin(sql_repo, seed))
    sql_repo.set_current_screening(ALICE, s.id)
    mine = sql_repo.visitor(ALICE, 1).current
    assert mine is not None and mine.row_version == s.row_version
    assert mine == SqlRepository(engine, clock).get_screening(s.id)  # as stored, exactly

    other = SqlRepository(engine, clock)  # a second process answers the next question
    theirs = other.get_screening(s.id)
    assert theirs is not None
    theirs = answer(other, seed, theirs)

    seen = sql_repo.visitor(ALICE, 2).current
    assert seen is not None
    assert seen.row_version == theirs.row_version == s.row_version + 1
    assert dict(seen.state.answers) == dict(theirs.state.answers)
    assert seen.state.at == theirs.state.at != s.state.at


def test_decoded_screenings_kept_are_open_ones_and_bounded(
    sql_repo: SqlRepository, seed: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays flat however many screenings a process records."""
    monkeypatch.setattr("storage.sql.CACHED_SCREENINGS", 3)
    opened = [begin(sql_repo, seed, f"S-{i:03}") for i in range(5)]
    assert sorted(sql_repo._decoded) == [s.id for s in opened[-3:]]  # the latest three
    done = answer_all(sql_repo, seed, opened[-1])
    sql_repo.close(done, "signed", actor=ALICE)
    assert sorted(sql_repo._decoded) == [s.id for s in opened[-3:-1]]


def test_a_screening_keeps_its_protocol_version(sql_repo: SqlRepository, seed: Protocol) -> None:
    s = answer(sql_repo, seed, begin(sql_repo, seed))
    newer = seed.model_copy(update={"version": "2.0"})
    assert newer.digest != seed.digest
    sql_repo.save_protocol(newer)
    reread = sql_repo.get_screening(s.id)
    assert reread is not None and reread.protocol_digest == seed.digest
    assert sql_repo.load_protocol(reread.protocol_digest) == seed
    assert sql_repo.load_protocol(newer.digest) == newer


def test_migration_0003_fills_the_state_of_existing_screenings(engine: Engine) -> None:
    """Screenings recorded before the state snapshot existed get it from their rows."""
    upgrade(engine, "0002")
    at = "2026-01-01 08:00:00"
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO protocol_version (digest, protocol_id, version, content, "
                "stored_at) VALUES ('d', 'p', '1', '{}', :at)"
            ),
            {"at": at},
        )
        c.execute(
            text(
                "INSERT INTO screening (id, code, protocol_id, protocol_version, "
                "protocol_digest, status, at, revisiting, created_by, created_at, "
                "updated_at, row_version) VALUES (1, 'OLD-1', 'p', '1', 'd', "
                "'in_progress', 'age', false, 7, :at, :at, 4)"
            ),
            {"at": at},
        )
        for i, (qid, value, status) in enumerate(
            [
                ("consent_signed", '{"type": "bool", "value": false}', "superseded"),
                ("consent_signed", '{"type": "bool", "value": true}', "active"),
                ("pregnancy_test", '{"type": "choice", "value": "negative"}', "retired"),
            ],
            1,
        ):
            c.execute(
                text(
                    "INSERT INTO answer (id, screening_id, question_id, value, given_by, "
                    "given_at, status) VALUES (:i, 1, :q, :v, 7, :at, :s)"
                ),
                {"i": i, "q": qid, "v": value, "at": at, "s": status},
            )
        c.execute(
            text(
                "INSERT INTO decision (screening_id, criterion_id, approve, reason, "
                "decided_by, decided_at) VALUES (1, 'I8.2', true, 'ok', 8, :at)"
            ),
            {"at": at},
        )
        c.execute(
            text(
                "INSERT INTO decision (screening_id, criterion_id, approve, reason, "
                "decided_by, decided_at, withdrawn_at) VALUES (1, 'I3', false, 'x', 8, "
                ":at, :at)"
            ),
            {"at": at},
        )
        for seq, digest in ((1, "a" * 64), (2, "b" * 64)):
            c.execute(
                text(
                    "INSERT INTO audit_event (screening_code, seq, kind, payload, actor, "
                    "at, prev_hash, hash) VALUES ('OLD-1', :s, 'k', '{}', 7, :at, 'p', "
                    ":h)"
                ),
                {"s": seq, "at": at, "h": digest},
            )
    upgrade(engine)
    repo = SqlRepository(engine)
    old = repo.find_screening("OLD-1")
    assert old is not None
    assert dict(old.state.answers) == {"consent_signed": True}
    assert dict(old.state.retired) == {"pregnancy_test": "negative"}
    assert list(old.state.decisions) == ["I8.2"]
    with engine.connect() as c:
        head = c.execute(text("SELECT audit_seq, audit_head FROM screening")).one()
    assert tuple(head) == (2, "b" * 64)


def test_migration_0005_keeps_processed_updates_and_the_review_queue(engine: Engine) -> None:
    """The review queue's index becomes partial; on SQLite update ids become the row id."""
    upgrade(engine, "0004")
    at = "2026-01-01 08:00:00"
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO processed_update (update_id, processed_at) VALUES (:u, :at)"),
            {"u": 2**40 + 7, "at": at},
        )
        c.execute(
            text(
                "INSERT INTO protocol_version (digest, protocol_id, version, content, "
                "stored_at) VALUES ('d', 'p', '1', '{}', :at)"
            ),
            {"at": at},
        )
        for i, status in enumerate(("needs_review", "in_progress", "needs_review"), 1):
            c.execute(
                text(
                    "INSERT INTO screening (id, code, protocol_id, protocol_version, "
                    "protocol_digest, status, at, revisiting, created_by, created_at, "
                    "updated_at, row_version) VALUES (:i, :code, 'p', '1', 'd', :s, "
                    "'needs_review', false, 7, :at, :at, 1)"
                ),
                {"i": i, "code": f"OLD-{i}", "s": status, "at": at},
            )
    upgrade(engine)
    repo = SqlRepository(engine)
    assert repo.seen_update(2**40 + 7) and not repo.seen_update(2**40 + 8)
    assert [s.code for s in repo.needing_review()] == ["OLD-1", "OLD-3"]
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("screening")}
    assert indexes["ix_screening_review"]["column_names"] == ["updated_at", "id"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:
            own_index = c.execute(
                text(
                    "SELECT name FROM sqlite_master "
                    "WHERE tbl_name = 'processed_update' AND type = 'index'"
                )
            ).all()
        assert own_index == []  # the update id is the row id: no second b-tree to write


def test_processes_starting_together_store_protocol_and_staff_once(
    engine: Engine, seed: Protocol, clock: Clock
) -> None:
    """Several bot processes start at once: each stores the protocol and the admins."""
    upgrade(engine)
    repos = [SqlRepository(engine, clock) for _ in range(4)]
    barrier = threading.Barrier(len(repos))
    errors: list[BaseException] = []

    def boot(repo: SqlRepository) -> None:
        barrier.wait()
        try:
            repo.save_protocol(seed)
            repo.save_staff(Staff(ALICE, "Admin", Role.ADMIN))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(r,)) for r in repos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert repos[0].load_protocol(seed.digest) == seed
    assert repos[0].list_staff() == [Staff(ALICE, "Admin", Role.ADMIN)]


def test_statements_share_timestamp_conversions_but_never_a_stale_one(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from storage.prepared import Processors
    from storage.tables import AnswerRow, ScreeningRow

    processors = Processors(engine.dialect)
    given_at = processors.bind(AnswerRow.__table__.c.given_at.type)  # type: ignore[attr-defined]
    updated_at = processors.bind(ScreeningRow.__table__.c.updated_at.type)  # type: ignore[attr-defined]
    assert given_at is updated_at  # one transaction's timestamp is converted once
    own = ScreeningRow.__table__.c.updated_at.type.dialect_impl(engine.dialect)  # type: ignore[attr-defined]
    convert = own.bind_processor(engine.dialect) or (lambda value: value)
    first = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    later = first + timedelta(microseconds=1)
    assert given_at is not None
    for value in (first, first, later, first, datetime(2026, 3, 1, 10, 30, tzinfo=UTC)):
        assert given_at(value) == convert(value)


def test_json_columns_hold_what_the_standard_library_would() -> None:
    import json

    from storage.db import json_dumps

    value = {"answers": {"hb": {"value": "9.5", "unit": "g/dL"}}, 3: ["张", None, True, 1.25]}
    assert json.loads(json_dumps(value)) == json.loads(json.dumps(value))


def test_resume_list_reads_its_index_in_order_without_sorting(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine
) -> None:
    """The resume list's plan walks its partial index backwards and stops at the limit.

    The index it replaced also held closed screenings and ordered by ``closed_at`` first, so
    PostgreSQL fetched every open screening of the coordinator and sorted them all.
    """
    for i in range(3):
        begin(sql_repo, seed, code=f"R-{i}")
    query = resume_list_query(ALICE, 10)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # A handful of rows would be read whole whatever the indexes: make the planner
            # show what it would do with a large table.
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_bitmapscan = off")
            plan = "\n".join(r[0] for r in connection.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "Index Scan Backward using ix_screening_resume" in plan, plan
            assert "Sort" not in plan, plan
        else:
            plan = "\n".join(r[3] for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "USING INDEX ix_screening_resume" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    assert [s.code for s in sql_repo.unfinished(ALICE)] == ["R-2", "R-1", "R-0"]


def test_reads_take_no_transaction_and_leave_the_pooled_connection_as_they_found_it(
    sql_repo: SqlRepository, engine: Engine
) -> None:
    """A read runs outside a transaction (on PostgreSQL no ``BEGIN``, no ``ROLLBACK``).

    The connection then goes back to the pool as it came: a Core transaction on it still
    rolls back what it wrote.
    """
    with driver_connection(engine) as cursor:
        cursor.execute("SELECT 1").fetchall()
        if engine.dialect.name == "postgresql":
            assert cursor.connection.info.transaction_status.name == "IDLE"
        else:
            assert not cursor.connection.in_transaction
    assert not sql_repo.seen_update(7001)  # a read through the repository, on the same pool
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "INSERT INTO processed_update (update_id, processed_at) VALUES (7001, '2026-01-01')"
        )
        connection.rollback()
    assert not sql_repo.seen_update(7001)


def _round_trips(trace: str) -> int:
    """How often the client waited for the server: each turn from sending to receiving."""
    directions = [line.split("\t", 1)[0] for line in trace.splitlines() if line]
    return sum(1 for sent, got in itertools.pairwise(directions) if (sent, got) == ("F", "B"))


@contextmanager
def traced(engine: Engine, directory: Path) -> Iterator[list[str]]:
    """libpq's protocol trace, per connection, of what ``engine`` sends meanwhile: on the
    connection kept for prepared blocks (one, in a single thread), and on every connection
    checked out of the pool (Core's); the traces of the connections used, when it ends."""
    traces: list[str] = []
    files: dict[int, tuple[Any, int, Path]] = {}
    names = itertools.count(len(list(directory.iterdir())))

    def trace(dbapi_connection: Any) -> None:
        path = directory / f"{next(names)}.trace"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        files[id(dbapi_connection)] = dbapi_connection, fd, path
        dbapi_connection.pgconn.trace(fd)
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def untrace(dbapi_connection: Any) -> None:
        _, fd, path = files.pop(id(dbapi_connection))
        dbapi_connection.pgconn.untrace()
        os.close(fd)
        if text := path.read_text():
            traces.append(text)

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        trace(dbapi_connection)

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        # Back in the pool as the pool's other users expect it: outside a transaction, and
        # not in autocommit.
        assert dbapi_connection.info.transaction_status.name == "IDLE"
        assert not dbapi_connection.autocommit
        untrace(dbapi_connection)

    with driver_connection(engine) as cursor:  # no statement: no round trip
        kept = cursor.connection
    trace(kept)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        yield traces
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
        for connection, _, _ in list(files.values()):
            untrace(connection)


def test_a_step_on_postgresql_is_one_round_trip(
    postgres_engine: Engine, clock: Clock, seed: Protocol, tmp_path: Path
) -> None:
    """An answer, and a correction superseding one, each go to the server as one statement in
    no explicit transaction (one round trip after the checkout; there were seven, then three,
    and a ping before them). A step on a screening this process has not read itself is written
    statement by statement: the claim and the locked read, the changes, the commit."""
    upgrade(postgres_engine)
    repo = SqlRepository(postgres_engine, clock=clock)
    s = begin(repo, seed)
    with traced(postgres_engine, tmp_path) as traces:
        s = answer(repo, seed, s, update_id=9001)
    assert len(traces) == 1 and "processed_update" in traces[0] and "audit_event" in traces[0]
    assert "BEGIN" not in traces[0] and "COMMIT" not in traces[0]
    assert _round_trips(traces[0]) == 1, traces[0]
    assert repo.seen_update(9001)
    first = s.state.at
    s = answer(repo, seed, s)
    back = GoBack(first)
    s = repo.record_step(s, back, step(seed, s.state, back), actor=ALICE)
    with traced(postgres_engine, tmp_path) as traces:
        s = answer(repo, seed, s, reason="misread the source")
    assert [(e.status, e.change_reason) for e in repo.answers(s.id) if e.question_id == first] == [
        ("superseded", "misread the source"),
        ("active", None),
    ]
    assert _round_trips(traces[0]) == 1, traces[0]
    assert verify_entries(s.code, repo.audit_events(s.code)).ok

    elsewhere = SqlRepository(postgres_engine, clock=clock)  # has not read the row itself
    found = elsewhere.find_screening(s.code)
    assert found == s
    with traced(postgres_engine, tmp_path) as traces:
        s = answer(elsewhere, seed, found, update_id=9003)
    assert "BEGIN" in traces[0] and "COMMIT" in traces[0]
    assert _round_trips(traces[0]) == 3, traces[0]
    with traced(postgres_engine, tmp_path) as traces:
        s = answer(elsewhere, seed, s)  # now it knows the row as it wrote it
    assert _round_trips(traces[0]) == 1, traces[0]
    assert verify_entries(s.code, repo.audit_events(s.code)).ok
    # Setting the current screening; creating one and closing one, each of which sets or
    # clears the actor's current screening in the same round trips (and close reads nothing
    # back: it was 4 round trips, with a separate call to clear the current one 6).
    calls: list[Callable[[], object]] = [
        lambda: repo.set_current_screening(ALICE, s.id),
        lambda: begin(repo, seed, code="S-002", update_id=9002),
        lambda: repo.close(s, "cancelled", actor=ALICE, reason="withdrew"),
    ]
    trips = []
    for call in calls:
        with traced(postgres_engine, tmp_path) as traces:
            call()
        trips.append(sum(_round_trips(t) for t in traces))
        assert any("staff_member" in t for t in traces)
    assert trips == [2, 3, 3]


@contextmanager
def sqlite_statements(engine: Engine) -> Iterator[list[str]]:
    """The statements SQLite runs for prepared blocks meanwhile (on their kept connection)."""
    with driver_connection(engine) as cursor:
        connection = cursor.connection
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        connection.set_trace_callback(None)


def test_a_step_on_sqlite_writes_without_reading_the_row_when_its_chain_is_known(
    sqlite_engine: Engine, clock: Clock, seed: Protocol
) -> None:
    """A step on a screening this process last wrote runs no query: the claim, the
    version-checked update, the answer and the audit events. One it has not read itself
    (found by its code) is written with the locked read first, as before."""
    upgrade(sqlite_engine)
    repo = SqlRepository(sqlite_engine, clock=clock)
    s = begin(repo, seed)
    with sqlite_statements(sqlite_engine) as statements:
        s = answer(repo, seed, s, update_id=9301)
    written = [m[1] for st in statements if (m := re.match(r"(?:INSERT INTO|UPDATE) (\w+)", st))]
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT", statements
    assert written == ["processed_update", "screening", "answer", "audit_event"], statements
    assert len(statements) == len(written) + 2  # no query
    assert repo.seen_update(9301)
    assert verify_entries(s.code, repo.audit_events(s.code)).ok

    elsewhere = SqlRepository(sqlite_engine, clock=clock)
    found = elsewhere.find_screening(s.code)
    assert found == s
    with sqlite_statements(sqlite_engine) as statements:
        s = answer(elsewhere, seed, found)
    assert statements[1].startswith("SELECT") and "FROM screening" in statements[1], statements
    with sqlite_statements(sqlite_engine) as statements:
        s = answer(elsewhere, seed, s)  # now it knows the row as it wrote it
    assert not [st for st in statements if st.startswith("SELECT")], statements
    assert verify_entries(s.code, repo.audit_events(s.code)).ok
    assert len(repo.answers(s.id)) == 3


def test_sqlite_blocks_keep_one_connection_outside_the_pool(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Prepared blocks on SQLite take a kept connection, not one from the pool each time; a
    failed write leaves it with no transaction open; disposing of the engine closes it, and one
    out at that moment as it comes back."""
    upgrade(sqlite_engine)
    checkouts: list[object] = []
    event.listen(sqlite_engine, "checkout", lambda *args: checkouts.append(args))
    used = set()
    for write in (False, True, False, True):
        with driver_connection(sqlite_engine, write=write) as cursor:
            cursor.execute("SELECT 1").fetchall()
            used.add(id(cursor.connection))
    assert len(used) == 1 and len(checkouts) == 1  # the first block's connection, kept

    insert = "INSERT INTO processed_update (update_id, processed_at) VALUES (?, '2026-01-01')"
    with pytest.raises(IntegrityError), driver_connection(sqlite_engine, write=True) as cursor:
        cursor.execute(insert, (7201,))
        cursor.execute(insert, (7201,))
    with driver_connection(sqlite_engine) as cursor:
        kept = cursor.connection
        assert id(kept) in used and not kept.in_transaction
        assert cursor.execute("SELECT count(*) FROM processed_update").fetchone()[0] == 0

    sqlite_engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")
    with driver_connection(sqlite_engine) as cursor:
        out = cursor.connection
        assert out is not kept
        sqlite_engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        out.execute("SELECT 1")
    with driver_connection(sqlite_engine, write=True) as cursor:
        assert cursor.connection not in (kept, out)
        cursor.execute(insert, (7202,))
    with driver_connection(sqlite_engine) as cursor:
        assert cursor.execute("SELECT count(*) FROM processed_update").fetchone()[0] == 1

    with pytest.raises(RuntimeError), driver_connection(sqlite_engine, write=True) as cursor:
        lost = cursor.connection
        lost.close()  # as if the connection broke mid-block: its rollback fails too
        raise RuntimeError("the block's own error")
    with driver_connection(sqlite_engine) as cursor:
        assert cursor.connection is not lost  # not kept: a fresh one
        assert cursor.execute("SELECT count(*) FROM processed_update").fetchone()[0] == 1

    unreachable = create_engine(f"sqlite:///{tmp_path / 'a-file' / 'db.sqlite3'}")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OperationalError), driver_connection(unreachable):
        pass  # SQLAlchemy's error, as Core raises it, not the driver's


def test_postgresql_blocks_keep_one_connection_in_autocommit_outside_the_pool(
    postgres_engine: Engine,
) -> None:
    """Prepared blocks on PostgreSQL take a kept connection (and its cursor), not one from the
    pool each time. It stays in autocommit between blocks, a write block still is one
    transaction (rolled back whole when it fails), and a connection the server has closed is
    replaced before use, with no error to the caller (as the pool's checkout check does)."""
    upgrade(postgres_engine)
    checkouts: list[object] = []
    event.listen(postgres_engine, "checkout", lambda *args: checkouts.append(args))
    used, cursors = set(), set()
    for write in (False, True, False, True):
        with driver_connection(postgres_engine, write=write) as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
            used.add(id(cursor.connection))
            cursors.add(id(cursor))
            assert cursor.connection.autocommit is not write
    assert len(used) == 1 and len(cursors) == 1 and len(checkouts) == 1

    insert = "INSERT INTO processed_update (update_id, processed_at) VALUES (%s, now())"
    with pytest.raises(IntegrityError), driver_connection(postgres_engine, write=True) as cursor:
        cursor.execute(insert, (7201,))
        cursor.execute(insert, (7201,))
    with driver_connection(postgres_engine) as cursor:
        kept = cursor.connection
        assert id(kept) in used and kept.autocommit
        assert kept.info.transaction_status.name == "IDLE"
        cursor.execute("SELECT count(*) FROM processed_update")
        assert cursor.fetchone() == (0,)
        pid = kept.info.backend_pid
    with (  # the same, its statements sent together
        pytest.raises(IntegrityError),
        driver_connection(postgres_engine, write=True) as cursor,
        pipelined(cursor),
    ):
        cursor.execute(insert, (7202,))
        cursor.execute(insert, (7202,))
    with driver_connection(postgres_engine) as cursor:
        assert cursor.connection is kept and kept.autocommit
        cursor.execute("SELECT count(*) FROM processed_update")
        assert cursor.fetchone() == (0,)

    with postgres_engine.connect() as other:  # the server ends the kept connection's session
        other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    deadline = time.monotonic() + 10
    while connection_gone(kept) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with driver_connection(postgres_engine, write=True) as cursor:
        assert cursor.connection is not kept and kept.closed
        cursor.execute(insert, (7203,))
    with driver_connection(postgres_engine) as cursor:
        cursor.execute("SELECT count(*) FROM processed_update")
        assert cursor.fetchone() == (1,)
        out = cursor.connection
        postgres_engine.dispose()  # closed as it comes back
    assert out.closed


def test_the_resume_list_on_postgresql_is_one_round_trip(
    postgres_engine: Engine, clock: Clock, seed: Protocol, tmp_path: Path
) -> None:
    """The resume list is one prepared query outside a transaction (read through Core it took
    three round trips: ``BEGIN``, the query, the pool's ``ROLLBACK``), in order, to its limit."""
    upgrade(postgres_engine)
    repo = SqlRepository(postgres_engine, clock=clock)
    created = [begin(repo, seed, code=f"L-{i}") for i in range(3)]
    with traced(postgres_engine, tmp_path) as traces:
        listed = repo.unfinished(ALICE, limit=2)
    assert listed == [created[2], created[1]]
    assert len(traces) == 1 and "BEGIN" not in traces[0] and "ROLLBACK" not in traces[0]
    assert _round_trips(traces[0]) == 1, traces[0]


def _two_processes_at(
    engine: Engine, clock: Clock, seed: Protocol
) -> tuple[SqlRepository, SqlRepository, Screening]:
    """A screening one answer in, read by a second process too (each knows the row's version
    and audit chain: on PostgreSQL each writes its steps in one statement)."""
    first = SqlRepository(engine, clock)
    s = answer(first, seed, begin(first, seed))
    second = SqlRepository(engine, clock)
    assert second.get_screening(s.id) == s
    return first, second, s


def test_a_step_from_an_older_version_writes_nothing_not_even_its_claim(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, clock: Clock
) -> None:
    first, second, s = _two_processes_at(engine, clock, seed)
    answer(first, seed, s, update_id=8001)
    with pytest.raises(StaleWrite):
        answer(second, seed, s, update_id=8002)
    assert not first.seen_update(8002)  # so a retry of the update is not taken for a duplicate
    assert len(first.answers(s.id)) == 2
    events = first.audit_events(s.code)
    assert len(events) == 3 and verify_entries(s.code, events).ok
    again = second.get_screening(s.id)
    assert again is not None and again.row_version == s.row_version + 1


def test_a_redelivery_another_process_recorded_is_a_duplicate(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, clock: Clock
) -> None:
    first, second, s = _two_processes_at(engine, clock, seed)
    answer(first, seed, s, update_id=8101)
    with pytest.raises(DuplicateUpdate):
        answer(second, seed, s, update_id=8101)  # the same update, based on the same version
    assert len(first.answers(s.id)) == 2
    assert len(first.audit_events(s.code)) == 3


def test_an_update_claimed_by_another_write_is_a_duplicate_at_the_current_version(
    sql_repo: SqlRepository, seed: Protocol, engine: Engine, clock: Clock
) -> None:
    first, second, s = _two_processes_at(engine, clock, seed)
    begin(first, seed, code="S-002", update_id=8201)  # the update's effect: another screening
    with pytest.raises(DuplicateUpdate):
        answer(second, seed, s, update_id=8201)
    after = first.get_screening(s.id)
    assert after is not None and after.row_version == s.row_version  # nothing written
    assert len(first.answers(s.id)) == 1
    assert len(first.audit_events(s.code)) == 2
    assert answer(second, seed, s).row_version == s.row_version + 1  # its next write goes in


def test_only_steps_that_touch_each_row_once_are_written_in_one_statement() -> None:
    decision = Decision("hb_min", approve=True, reason="transfused")
    assert touches_rows_once([AnswerRecorded("sex", "f", None), AnswerRetired("preg", False)])
    assert touches_rows_once([DecisionRecorded(decision), AnswerRetired("preg", False)])
    assert not touches_rows_once([AnswerRetired("sex", "f"), AnswerRecorded("sex", "m", "f")])
    assert not touches_rows_once([DecisionWithdrawn(decision), DecisionRecorded(decision)])
    changes = [AnswerRecorded("sex", "m", "f"), AnswerRecorded("preg", False, None)]
    assert shape_of(True, changes, 3) == (True, (("answer", True), ("answer", False)), 3)


def test_an_error_in_a_pipeline_rolls_back_the_whole_write(engine: Engine) -> None:
    """Statements after a failed one in a :func:`pipelined` block are not run, the error is
    SQLAlchemy's, and nothing of the transaction stays (on SQLite, statements run at once)."""
    upgrade(engine)
    insert = "INSERT INTO processed_update (update_id, processed_at) VALUES (%s, '2026-01-01')"
    if engine.dialect.name == "sqlite":
        insert = insert.replace("%s", "?")
    with (
        pytest.raises(IntegrityError),
        driver_connection(engine, write=True) as cursor,
        pipelined(cursor),
    ):
        cursor.execute(insert, (7101,))
        cursor.execute(insert, (7101,))  # the primary key refuses it
        cursor.execute(insert, (7102,))
    with driver_connection(engine) as cursor:
        cursor.execute("SELECT count(*) FROM processed_update")
        assert cursor.fetchone()[0] == 0


def test_a_connection_the_server_has_closed_is_replaced_without_an_error(
    postgres_engine: Engine, seed: Protocol
) -> None:
    """A pooled connection whose server session was ended is refused at checkout, before any
    statement: the reads and the write after it run on a fresh connection, and succeed."""
    upgrade(postgres_engine)
    repo = SqlRepository(postgres_engine)
    s = begin(repo, seed)
    with driver_connection(postgres_engine) as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    admin = make_engine(postgres_engine.url.render_as_string(hide_password=False))
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            for _ in range(100):  # until the session has ended (its socket closed)
                gone = connection.exec_driver_sql(
                    f"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {pid})"
                ).scalar()
                if gone:
                    break
                time.sleep(0.05)
    finally:
        admin.dispose()
    with driver_connection(postgres_engine) as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    assert repo.get_screening(s.id) is not None
    assert answer(repo, seed, s).row_version == s.row_version + 1


def test_an_update_that_changed_no_row_is_not_committed(
    sql_repo: SqlRepository,
    seed: Protocol,
    engine: Engine,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Written statement by statement, the version-checked update is checked after the
    pipeline, before the commit: if it changed no row, the write fails as stale and nothing
    of it stays."""
    s = begin(sql_repo, seed)
    writer = SqlRepository(engine, clock)  # has not read the row: writes statement by statement
    found = writer.find_screening(s.code)
    assert found == s
    finish = writer._finish

    def finish_against_another_version(cursor: Any, row: Any, *args: Any) -> tuple[int, str]:
        return finish(cursor, {**row, "row_version": row["row_version"] + 100}, *args)

    monkeypatch.setattr(writer, "_finish", finish_against_another_version)
    with pytest.raises(StaleWrite, match="changed during the write"):
        answer(writer, seed, found, update_id=9101)
    monkeypatch.undo()
    assert sql_repo.answers(s.id) == []
    assert len(sql_repo.audit_events(s.code)) == 1  # screening_started only
    assert not sql_repo.seen_update(9101)
    assert answer(writer, seed, found, update_id=9101).row_version == s.row_version + 1
