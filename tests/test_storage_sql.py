"""SQL-specific storage behaviour: migrations, tampering, concurrency, privacy."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from flows import (
    Answer,
    Protocol,
    step,
)
from reports.chain import verify_entries
from storage.db import (
    SchemaOutdated,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
    upgrade,
)
from storage.records import DuplicateUpdate, Role, Screening, Staff, StaleWrite
from storage.sql import SqlRepository
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


def test_upgrade_from_0006_keeps_staff_and_adds_their_conversation(engine: Engine) -> None:
    from sqlalchemy import text

    upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO staff_member (telegram_id, display_name, role, active, created_at, "
                "updated_at) VALUES (7, 'Dr Chen', 'investigator', true, :now, :now)"
            ),
            {"now": "2026-12-01 08:00:00"},
        )
    upgrade(engine)
    repo = SqlRepository(engine)
    staff = repo.get_staff(7)
    assert staff is not None and staff.display_name == "Dr Chen" and staff.conversation is None
    repo.save_conversation(7, '{"phase": {"kind": "idle"}}')
    assert repo.get_staff(7).conversation == '{"phase": {"kind": "idle"}}'  # type: ignore[union-attr]


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
    assert [s.code for s in repo.waiting("needs_review")] == ["OLD-1", "OLD-3"]
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


def test_json_columns_hold_what_the_standard_library_would() -> None:
    import json

    from storage.db import json_dumps

    value = {"answers": {"hb": {"value": "9.5", "unit": "g/dL"}}, 3: ["张", None, True, 1.25]}
    assert json.loads(json_dumps(value)) == json.loads(json.dumps(value))


def _round_trips(trace: str) -> int:
    """How often the client waited for the server: each turn from sending to receiving."""
    directions = [line.split("\t", 1)[0] for line in trace.splitlines() if line]
    return sum(1 for sent, got in itertools.pairwise(directions) if (sent, got) == ("F", "B"))


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


def test_a_connection_the_server_has_closed_is_replaced_without_an_error(
    postgres_engine: Engine, seed: Protocol
) -> None:
    """A pooled connection whose server session was ended is refused at checkout, before any
    statement: the reads and the write after it run on a fresh connection, and succeed."""
    upgrade(postgres_engine)
    repo = SqlRepository(postgres_engine)
    s = begin(repo, seed)
    with postgres_engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
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
    with postgres_engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    assert repo.get_screening(s.id) is not None
    assert answer(repo, seed, s).row_version == s.row_version + 1
