"""The SQL repository (SQLite or PostgreSQL).

Tables are declared with SQLModel (``storage.tables``); the hot paths (reading a screening,
recording a step) use SQLAlchemy Core statements on those tables, because every answer goes
through them and ORM object loading would cost more than the statements themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, cast

import sqlmodel
from sqlalchemy import (
    BindParameter,
    Connection,
    Dialect,
    Engine,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from flows import (
    AnswerRecorded,
    AnswerRetired,
    DecisionRecorded,
    DecisionWithdrawn,
    Protocol,
    ScreeningState,
    Step,
)
from flows.dialog import Event
from flows.rules import format_actual
from flows.values import LabResult, Quantity, value_from_json, value_to_json
from storage.audit import GENESIS, ChainLink, next_link, step_events
from storage.db import writer
from storage.memory import utc_now
from storage.one_statement import StepStatements, shape_of, touches_rows_once
from storage.prepared import Prepared, Processors, driver_connection, pipelined
from storage.prepared import prepare as prepare_statement
from storage.records import (
    CLOSE_STATUSES,
    AnswerEntry,
    AuditEntry,
    CloseKind,
    CodeTaken,
    DecisionEntry,
    DuplicateUpdate,
    Role,
    Screening,
    Staff,
    StaleWrite,
    Visitor,
    state_from_json,
    state_to_json,
)
from storage.tables import (
    AnswerRow,
    AuditEventRow,
    DecisionRow,
    ProcessedUpdate,
    ProtocolVersion,
    ScreeningRow,
    StaffMember,
)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


SCREENING = _table(ScreeningRow)
ANSWER = _table(AnswerRow)
DECISION = _table(DecisionRow)
AUDIT = _table(AuditEventRow)
STAFF = _table(StaffMember)
PROTOCOL = _table(ProtocolVersion)
UPDATE = _table(ProcessedUpdate)


def _staff(row: Mapping[Any, Any]) -> Staff:
    return Staff(
        row["telegram_id"],
        row["display_name"],
        Role(row["role"]),
        row["active"],
        row["site"],
        row["current_screening_id"],
    )


def _record(row: Mapping[Any, Any]) -> Screening:
    return Screening(
        id=row["id"],
        code=row["code"],
        protocol_id=row["protocol_id"],
        protocol_version=row["protocol_version"],
        protocol_digest=row["protocol_digest"],
        status=row["status"],
        state=state_from_json(row["at"], row["revisiting"], row["state"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        row_version=row["row_version"],
        closed_at=row["closed_at"],
        close_kind=row["close_kind"],
        close_reason=row["close_reason"],
        closed_by=row["closed_by"],
        site=row["site"],
    )


def resume_list_query(
    telegram_id: int | BindParameter[int], limit: int | BindParameter[int]
) -> Select[Any]:
    """A staff member's open screenings, the most recently active first.

    Its condition and order are those of the partial index ``ix_screening_resume``, which the
    database reads backwards, stopping after ``limit`` entries. Either argument may be a bound
    parameter (the repository prepares the query once).
    """
    return (
        select(SCREENING)
        .where(SCREENING.c.created_by == telegram_id, SCREENING.c.closed_at.is_(None))
        .order_by(SCREENING.c.updated_at.desc(), SCREENING.c.id.desc())
        .limit(limit)
    )


def _insert_or_ignore(conn: Connection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _unit(value: Any) -> str | None:
    return value.unit if isinstance(value, Quantity | LabResult) else None


def _links(
    code: str,
    seq: int,
    head: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    actor: int | None,
    now: datetime,
) -> list[ChainLink]:
    """The links that append ``events`` to the chain of ``code`` ending at ``(seq, head)``."""
    links = []
    for kind, payload in events:
        seq += 1
        link = next_link(code, head, seq, kind, payload, actor, now)
        links.append(link)
        head = link.hash
    return links


def _closing(screening: Screening) -> dict[str, Any]:
    """The closing columns of ``screening``'s row, as the locked read returns them."""
    return {
        "closed_at": screening.closed_at,
        "close_kind": screening.close_kind,
        "close_reason": screening.close_reason,
        "closed_by": screening.closed_by,
    }


# What a staff record is made of.
_STAFF = ("telegram_id", "display_name", "role", "active", "site", "current_screening_id")

# How many open screenings a repository keeps decoded (about one per chat active at once).
CACHED_SCREENINGS = 4096

# A screening's audit chain at one version of its row: the last event's number and hash.
Chain = tuple[int, str]

# What recording a step reads back of the locked screening row.
_LOCKED: tuple[str, ...] = (
    *("id", "code", "status", "row_version", "audit_seq", "audit_head"),
    *("closed_at", "close_kind", "close_reason", "closed_by"),
)


# What creating a screening writes (the rest of the row starts empty).
_CREATED: tuple[str, ...] = (
    *("code", "protocol_id", "protocol_version", "protocol_digest", "status", "at"),
    *("revisiting", "created_by", "site", "created_at", "updated_at", "row_version"),
    *("state", "audit_seq", "audit_head"),
)


@dataclass(frozen=True, slots=True)
class _StepWrite:
    """What :meth:`SqlRepository.record_step` writes, however it writes it."""

    screening: Screening
    result: Step
    events: Sequence[tuple[str, dict[str, Any]]]
    values: dict[str, Any]  # the screening row's columns the step sets
    actor: int
    raw_text: str | None
    reason: str | None
    update_id: int | None
    now: datetime


class _Hot:
    """The statements every update runs, compiled once for the engine's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        # One set of bind processors for all of them: see :class:`storage.prepared.Processors`.
        self.processors = Processors(dialect)
        prepare = partial(prepare_statement, processors=self.processors)
        locked = select(*(SCREENING.c[name] for name in _LOCKED)).where(
            SCREENING.c.id == bindparam("sid")
        )
        if dialect.name == "postgresql":
            locked = locked.with_for_update()
        self.staff = prepare(select(STAFF).where(STAFF.c.telegram_id == bindparam("tid")), dialect)
        # The current screening's version only: its content is decoded from the cache of
        # recently written screenings, and read in full only when that has no such version.
        self.visitor = prepare(
            select(
                *(STAFF.c[name] for name in _STAFF),
                SCREENING.c.row_version.label("s_row_version"),
                exists().where(UPDATE.c.update_id == bindparam("uid")).label("seen"),
            )
            .select_from(STAFF.outerjoin(SCREENING, SCREENING.c.id == STAFF.c.current_screening_id))
            .where(STAFF.c.telegram_id == bindparam("tid")),
            dialect,
        )
        self.set_current = prepare(
            update(STAFF)
            .where(STAFF.c.telegram_id == bindparam("tid"))
            .values(current_screening_id=bindparam("sid")),
            dialect,
        )
        # The screening just inserted in the same transaction, found by its code: its id is
        # not back from the server yet when this is sent in the same pipeline.
        self.take_up = prepare(
            update(STAFF)
            .where(STAFF.c.telegram_id == bindparam("tid"))
            .values(
                current_screening_id=select(SCREENING.c.id)
                .where(SCREENING.c.code == bindparam("code"))
                .scalar_subquery()
            ),
            dialect,
        )
        self.put_down = prepare(
            update(STAFF)
            .where(
                STAFF.c.telegram_id == bindparam("tid"),
                STAFF.c.current_screening_id == bindparam("sid"),
            )
            .values(current_screening_id=null()),
            dialect,
        )
        self.code_taken = prepare(
            select(SCREENING.c.id).where(SCREENING.c.code == bindparam("code")), dialect
        )
        self.create = prepare(
            insert(SCREENING)
            .values({name: bindparam(name) for name in _CREATED})
            .returning(SCREENING.c.id),
            dialect,
            [SCREENING.c.id],
        )
        self.seen = prepare(
            select(UPDATE.c.update_id).where(UPDATE.c.update_id == bindparam("uid")), dialect
        )
        self.screening = prepare(
            select(SCREENING).where(SCREENING.c.id == bindparam("sid")), dialect
        )
        self.unfinished = prepare(resume_list_query(bindparam("tid"), bindparam("limit")), dialect)
        self.locked = prepare(locked, dialect)
        self.claim = prepare(
            insert(UPDATE).values(update_id=bindparam("uid"), processed_at=bindparam("now")),
            dialect,
        )
        self.answer = prepare(
            insert(ANSWER)
            .values(
                screening_id=bindparam("sid"),
                question_id=bindparam("qid"),
                raw_text=bindparam("raw"),
                value=bindparam("value"),
                unit=bindparam("unit"),
                normalised=bindparam("normalised"),
                given_by=bindparam("actor"),
                given_at=bindparam("now"),
                status=bindparam("status"),
            )
            .returning(ANSWER.c.id),
            dialect,
            [ANSWER.c.id],
        )
        self.supersede = prepare(
            update(ANSWER)
            .where(
                ANSWER.c.screening_id == bindparam("sid"),
                ANSWER.c.question_id == bindparam("qid"),
                ANSWER.c.status == "active",
                ANSWER.c.id != bindparam("new_id"),
            )
            .values(
                status="superseded",
                superseded_by=bindparam("new_id"),
                changed_at=bindparam("now"),
                change_reason=bindparam("reason"),
            ),
            dialect,
        )
        self.audit = prepare(
            insert(AUDIT).values(
                screening_code=bindparam("p_code"),
                seq=bindparam("p_seq"),
                kind=bindparam("p_kind"),
                payload=bindparam("p_payload"),
                actor=bindparam("p_actor"),
                at=bindparam("p_at"),
                prev_hash=bindparam("p_prev"),
                hash=bindparam("p_hash"),
            ),
            dialect,
        )
        self.retire = prepare(
            update(ANSWER)
            .where(
                ANSWER.c.screening_id == bindparam("sid"),
                ANSWER.c.question_id == bindparam("qid"),
                ANSWER.c.status == "active",
            )
            .values(
                status="retired", changed_at=bindparam("now"), change_reason=bindparam("reason")
            ),
            dialect,
        )
        self.decide = prepare(
            insert(DECISION).values(
                screening_id=bindparam("sid"),
                criterion_id=bindparam("cid"),
                approve=bindparam("approve"),
                reason=bindparam("reason"),
                decided_by=bindparam("actor"),
                decided_at=bindparam("now"),
            ),
            dialect,
        )
        self.withdraw = prepare(
            update(DECISION)
            .where(
                DECISION.c.screening_id == bindparam("sid"),
                DECISION.c.criterion_id == bindparam("cid"),
                DECISION.c.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=bindparam("now")),
            dialect,
        )
        self.dialect = dialect
        self._advance: dict[tuple[str, ...], Prepared] = {}

    def advance(self, columns: tuple[str, ...]) -> Prepared:
        """The version-checked update of a screening row setting ``columns`` (``p_`` + name)."""
        prepared = self._advance.get(columns)
        if prepared is None:
            statement = (
                update(SCREENING)
                .where(
                    SCREENING.c.id == bindparam("p_sid"),
                    SCREENING.c.row_version == bindparam("p_expected"),
                )
                .values({name: bindparam(f"p_{name}") for name in columns})
            )
            prepared = self._advance[columns] = prepare_statement(
                statement, self.dialect, processors=self.processors
            )
        return prepared


class SqlRepository:
    """Repository over an SQLAlchemy engine; each public method is one transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._write = writer(engine)
        self._clock = clock
        self._hot = _Hot(engine.dialect)
        # On PostgreSQL a step is written in one statement when it can be (storage.one_statement).
        self._steps = (
            StepStatements(
                engine.dialect,
                self._hot.processors,
                {t.name: t for t in (SCREENING, ANSWER, DECISION, AUDIT, UPDATE)},
            )
            if engine.dialect.name == "postgresql"
            else None
        )
        self._stored_protocols: set[str] = set()  # digests known to be in the database
        # Each with its audit chain at that version when known: see :meth:`_recent`.
        self._decoded: dict[int, tuple[Screening, Chain | None]] = {}
        self._decoded_lock = threading.Lock()  # the bot may call from several threads

    def _read(self, statement: Prepared, **values: Any) -> dict[str, Any] | None:
        """The first row of a prepared query."""
        with driver_connection(self.engine) as cursor:
            return statement.first(cursor, **values)

    # --- staff ---
    def visitor(self, telegram_id: int, update_id: int) -> Visitor:
        """See :class:`storage.repository.Repository`."""
        row = self._read(self._hot.visitor, tid=telegram_id, uid=update_id)
        if row is None:  # a stranger: no staff row to join the rest to
            return Visitor(None, None, self.seen_update(update_id))
        current = None
        sid, version = row["current_screening_id"], row["s_row_version"]
        if sid is not None and version is not None:
            current = self._recent(sid, version) or self.get_screening(sid)
        return Visitor(_staff(row), current, bool(row["seen"]))

    def _recent(self, screening_id: int, row_version: int) -> Screening | None:
        """A screening as this repository last read or wrote it, if still at that version.

        Every write to a screening row increases its version (the version-checked update is
        the only one there is), so a version names one content: whatever another process
        wrote since has another version, and is read from the database.
        """
        cached = self._decoded.get(screening_id)
        return cached[0] if cached is not None and cached[0].row_version == row_version else None

    def _chain(self, screening: Screening) -> Chain | None:
        """The audit chain of ``screening``'s row at its version, if this repository knows it."""
        cached = self._decoded.get(screening.id)
        if cached is None or cached[0].row_version != screening.row_version:
            return None
        return cached[1]

    def _remember(self, screening: Screening, chain: Chain | None = None) -> Screening:
        """Keep an open screening for :meth:`_recent` (a closed one is let go); returns it.

        ``chain`` is its audit chain at that version, read or written with it.
        """
        cache = self._decoded
        with self._decoded_lock:
            cache.pop(screening.id, None)  # most recently used last
            if screening.unfinished:
                cache[screening.id] = (screening, chain)
                if len(cache) > CACHED_SCREENINGS:
                    del cache[next(iter(cache))]
        return screening

    def get_staff(self, telegram_id: int) -> Staff | None:
        """See :class:`storage.repository.Repository`."""
        row = self._read(self._hot.staff, tid=telegram_id)
        return _staff(row) if row else None

    def save_staff(self, staff: Staff) -> Staff:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        values = {
            "display_name": staff.display_name,
            "role": staff.role.value,
            "active": staff.active,
            "site": staff.site,
            "updated_at": now,
        }
        with self._write.begin() as conn:
            conn.execute(
                _insert_or_ignore(conn, STAFF).values(
                    telegram_id=staff.telegram_id, created_at=now, **values
                )
            )
            # Whether this insert or a concurrent one created the row, the update sets it.
            conn.execute(
                update(STAFF).where(STAFF.c.telegram_id == staff.telegram_id).values(**values)
            )
            row = conn.execute(select(STAFF).where(STAFF.c.telegram_id == staff.telegram_id))
            return _staff(row.one()._mapping)

    def set_current_screening(self, telegram_id: int, screening_id: int | None) -> None:
        """See :class:`storage.repository.Repository`."""
        # BEGIN and the update in one round trip (then the commit).
        with driver_connection(self.engine, write=True) as cursor, pipelined(cursor):
            self._hot.set_current.execute(cursor, tid=telegram_id, sid=screening_id)

    def list_staff(self) -> list[Staff]:
        """See :class:`storage.repository.Repository`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(STAFF).order_by(STAFF.c.display_name, STAFF.c.telegram_id))
            return [_staff(r._mapping) for r in rows]

    # --- protocols ---
    def save_protocol(self, protocol: Protocol) -> None:
        """See :class:`storage.repository.Repository`."""
        with self._write.begin() as conn:
            known = conn.execute(
                select(PROTOCOL.c.digest).where(PROTOCOL.c.digest == protocol.digest)
            )
            if known.first() is None:
                # Several processes starting together store the same version: the first one
                # wins and the others' inserts do nothing (a plain insert would fail their start).
                conn.execute(
                    _insert_or_ignore(conn, PROTOCOL).values(
                        digest=protocol.digest,
                        protocol_id=protocol.id,
                        version=protocol.version,
                        content=protocol.model_dump(
                            mode="json", by_alias=True, exclude_defaults=True
                        ),
                        stored_at=self._clock(),
                    )
                )
        self._stored_protocols.add(protocol.digest)

    def load_protocol(self, digest: str) -> Protocol | None:
        """See :class:`storage.repository.Repository`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(PROTOCOL.c.content).where(PROTOCOL.c.digest == digest))
            content = row.scalar_one_or_none()
            return Protocol.model_validate(content) if content is not None else None

    # --- reading screenings ---
    def _many(self, query: Any) -> list[Screening]:
        with self.engine.connect() as conn:
            return [_record(r._mapping) for r in conn.execute(query)]

    def get_screening(self, screening_id: int) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        row = self._read(self._hot.screening, sid=screening_id)
        if row is None:
            return None
        return self._remember(_record(row), (row["audit_seq"], row["audit_head"]))

    def find_screening(self, code: str) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        found = self._many(select(SCREENING).where(SCREENING.c.code == code))
        return found[0] if found else None

    def unfinished(self, telegram_id: int, limit: int = 20) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        # Prepared, outside a transaction: on PostgreSQL one round trip, not three (``BEGIN``,
        # the query, and the pool's ``ROLLBACK`` around Core's query).
        with driver_connection(self.engine) as cursor:
            rows = self._hot.unfinished.all(cursor, tid=telegram_id, limit=limit)
        return [_record(row) for row in rows]

    def needing_review(self, limit: int = 50) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        return self._many(
            select(SCREENING)
            .where(SCREENING.c.status == "needs_review", SCREENING.c.closed_at.is_(None))
            .order_by(SCREENING.c.updated_at, SCREENING.c.id)
            .limit(limit)
        )

    def in_range(self, start: datetime, end: datetime, batch: int = 500) -> Iterator[Screening]:
        """See :class:`storage.repository.Repository` (keyset-paginated, bounded memory)."""
        last_id = 0
        while True:
            records = self._many(
                select(SCREENING)
                .where(
                    SCREENING.c.created_at >= start,
                    SCREENING.c.created_at < end,
                    SCREENING.c.id > last_id,
                )
                .order_by(SCREENING.c.id)
                .limit(batch)
            )
            if not records:
                return
            yield from sorted(records, key=lambda s: (s.created_at, s.id))
            last_id = records[-1].id

    # --- writing ---
    def _claim_update(
        self,
        cursor: Any,
        update_id: int | None,
        now: datetime,
        then: Prepared | None = None,
        **values: Any,
    ) -> dict[str, Any] | None:
        """Claim the update, then run the query ``then`` if any; returns its first row.

        The primary key makes the claim atomic: a second delivery of the same update, in this
        process or another, fails here and its whole transaction is rolled back. In a
        pipeline the claim's error arrives with the query's reply, so the two share one
        round trip and one ``except`` (the query cannot break an integrity constraint).
        """
        try:
            if update_id is not None:
                self._hot.claim.execute(cursor, uid=update_id, now=now)
            return None if then is None else then.first(cursor, **values)
        except IntegrityError as exc:
            if update_id is None:
                raise
            raise DuplicateUpdate(update_id) from exc

    def _audit(
        self,
        cursor: Any,
        code: str,
        seq: int,
        head: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        actor: int | None,
        now: datetime,
    ) -> Chain:
        """Append ``events`` to the chain ``(seq, head)`` of ``code``; returns its new end."""
        links = _links(code, seq, head, events, actor, now)
        self._append(cursor, code, links, actor, now)
        return (links[-1].seq, links[-1].hash) if links else (seq, head)

    def _append(
        self,
        cursor: Any,
        code: str,
        links: Sequence[ChainLink],
        actor: int | None,
        now: datetime,
    ) -> None:
        """Insert the audit events of ``links`` (made by :func:`_links`)."""
        rows = [
            {
                "p_code": code,
                "p_seq": link.seq,
                "p_kind": link.kind,
                "p_payload": link.payload,
                "p_actor": actor,
                "p_at": now,
                "p_prev": link.prev_hash,
                "p_hash": link.hash,
            }
            for link in links
        ]
        self._hot.audit.execute_many(cursor, rows)

    def _claim_and_lock(
        self, cursor: Any, update_id: int | None, screening: Screening, now: datetime
    ) -> Mapping[str, Any]:
        """Claim the update, then read the screening's row, locked.

        The claim comes first: a redelivery is then recognised as such, and dropped, rather
        than reported as a conflicting write.
        """
        # ``FOR UPDATE`` on PostgreSQL; on SQLite the transaction holds the write lock already.
        row = self._claim_update(cursor, update_id, now, self._hot.locked, sid=screening.id)
        assert row is not None, f"screening {screening.id} vanished"
        if row["row_version"] != screening.row_version:
            raise StaleWrite(
                f"screening {row['code']} changed (version {row['row_version']}, "
                f"write based on {screening.row_version})"
            )
        return row

    def _finish(
        self,
        cursor: Any,
        row: Mapping[str, Any],
        events: Sequence[tuple[str, dict[str, Any]]],
        actor: int,
        now: datetime,
        values: dict[str, Any],
    ) -> Chain:
        """Append the audit events, then update the locked screening row (next version).

        Sent last in the write's pipeline: :meth:`_check_finished` checks it after the block.

        Returns:
            The row's audit chain at its new version.
        """
        chain = self._audit(
            cursor, row["code"], row["audit_seq"], row["audit_head"], events, actor, now
        )
        # The version check is repeated in the UPDATE itself so that a concurrent writer
        # that slipped past the read can never be overwritten silently.
        self._advance(cursor, row["id"], row["row_version"], chain, now, values)
        return chain

    def _advance(
        self,
        cursor: Any,
        sid: int,
        expected: int,
        chain: Chain,
        now: datetime,
        values: dict[str, Any],
    ) -> None:
        """Move the screening row from version ``expected`` to the next.

        Its audit chain then ends at ``chain``. The cursor's ``rowcount`` tells whether the row
        was at that version (1) or not (0).
        """
        values = {
            "row_version": expected + 1,
            "updated_at": now,
            "audit_seq": chain[0],
            "audit_head": chain[1],
            **values,
        }
        self._hot.advance(tuple(values)).execute(
            cursor,
            p_sid=sid,
            p_expected=expected,
            **{f"p_{name}": value for name, value in values.items()},
        )

    @staticmethod
    def _check_finished(cursor: Any, row: Mapping[str, Any]) -> None:
        """Check, after the pipeline, that :meth:`_finish`'s update changed the row.

        That update is the cursor's last statement; unless it changed the screening's row,
        the transaction must not commit.
        """
        if cursor.rowcount != 1:
            raise StaleWrite(f"screening {row['code']} changed during the write")

    def create_screening(
        self,
        code: str,
        protocol: Protocol,
        state: ScreeningState,
        *,
        actor: int,
        update_id: int | None = None,
        site: str | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        if protocol.digest not in self._stored_protocols:
            # Stored versions are never changed or removed, so once is enough per process.
            self.save_protocol(protocol)
        started = {
            "protocol": protocol.id,
            "version": protocol.version,
            "digest": protocol.digest,
            "outcome": {"at": state.at, "status": "in_progress", "excluded_by": []},
        }
        try:
            with driver_connection(self.engine, write=True) as cursor:
                with pipelined(cursor):
                    # The claim first: a redelivery is a duplicate, not a taken code.
                    taken = self._hot.code_taken
                    if self._claim_update(cursor, update_id, now, taken, code=code):
                        raise CodeTaken(code)
                    seq, head = self._audit(
                        cursor, code, 0, GENESIS, [("screening_started", started)], actor, now
                    )
                    values = {
                        "code": code,
                        "protocol_id": protocol.id,
                        "protocol_version": protocol.version,
                        "protocol_digest": protocol.digest,
                        "status": "in_progress",
                        "at": state.at,
                        "revisiting": state.revisiting,
                        "created_by": actor,
                        "site": site,
                        "created_at": now,
                        "updated_at": now,
                        "row_version": 1,
                        "state": state_to_json(state),
                        "audit_seq": seq,
                        "audit_head": head,
                    }
                    self._hot.create.execute(cursor, **values)
                    # The creator works on it from now on, in the same transaction (a crash
                    # cannot leave them without it). On a cursor of its own: the insert's
                    # reply, read below, stays this cursor's last result.
                    with closing(cursor.connection.cursor()) as aside:
                        self._hot.take_up.execute(aside, tid=actor, code=code)
                # The pipeline has collected the insert's reply with the others' as it ended.
                inserted = self._hot.create.fetched(cursor)
                assert inserted is not None
            created = _record(
                {
                    **values,
                    "id": inserted["id"],
                    "closed_at": None,
                    "close_kind": None,
                    "close_reason": None,
                    "closed_by": None,
                }
            )
        except IntegrityError as exc:  # a concurrent insert of the same code
            raise CodeTaken(code) from exc
        return self._remember(created, (seq, head))

    def record_step(
        self,
        screening: Screening,
        event: Event,
        result: Step,
        *,
        actor: int,
        raw_text: str | None = None,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        status = result.verdict.status.value
        events = step_events(event, result, raw_text, reason)
        values = {
            "at": result.state.at,
            "revisiting": result.state.revisiting,
            "status": status,
            "state": state_to_json(result.state),
        }
        write = _StepWrite(
            screening, result, events, values, actor, raw_text, reason, update_id, now
        )
        chain = self._chain(screening)
        row: Mapping[str, Any]
        if chain is None:
            row, chain = self._step_by_statements(write)
        elif self._steps is None:  # SQLite
            chain = self._step_from_chain(write, chain)
            row = _closing(screening)
        elif touches_rows_once(result.changes):
            row, chain = self._step_at_once(write, chain)
        else:
            row, chain = self._step_by_statements(write)
        stored = Screening(
            id=screening.id,
            code=screening.code,
            protocol_id=screening.protocol_id,
            protocol_version=screening.protocol_version,
            protocol_digest=screening.protocol_digest,
            status=status,
            state=result.state,
            created_by=screening.created_by,
            created_at=screening.created_at,
            updated_at=now,
            row_version=screening.row_version + 1,
            closed_at=row["closed_at"],
            close_kind=row["close_kind"],
            close_reason=row["close_reason"],
            closed_by=row["closed_by"],
            site=screening.site,
        )
        return self._remember(stored, chain)

    def _step_by_statements(self, w: _StepWrite) -> tuple[Mapping[str, Any], Chain]:
        """Write a step statement by statement, in one transaction.

        Returns:
            The locked row as read, and the new end of its audit chain.
        """
        with driver_connection(self.engine, write=True) as cursor:
            # On PostgreSQL three round trips: the claim with the locked read, the changes with
            # the audit events and the update, and the commit.
            with pipelined(cursor):
                row = self._claim_and_lock(cursor, w.update_id, w.screening, w.now)
                self._changes(cursor, row["id"], w)
                chain = self._finish(cursor, row, w.events, w.actor, w.now, w.values)
            self._check_finished(cursor, row)
        return row, chain

    def _step_from_chain(self, w: _StepWrite, chain: Chain) -> Chain:
        """Write a step on SQLite without reading the row, its audit chain known.

        The chain's end is the screening's as this repository last read or wrote it
        (:meth:`_chain`). Every write to the row increases its version, so the version-checked
        update, run first, both proves that end still the row's and takes the place of the
        locked read of :meth:`_step_by_statements` as the check that nobody wrote between
        (one statement fewer an answer). The transaction holds SQLite's write lock from its
        ``BEGIN IMMEDIATE``, so the order of its statements changes nothing for others.

        Returns:
            The new end of the audit chain.
        """
        screening, now = w.screening, w.now
        links = _links(screening.code, *chain, w.events, w.actor, now)
        end = (links[-1].seq, links[-1].hash) if links else chain
        with driver_connection(self.engine, write=True) as cursor:
            # The claim first: a redelivery is a duplicate, not a conflicting write.
            self._claim_update(cursor, w.update_id, now)
            self._advance(cursor, screening.id, screening.row_version, end, now, w.values)
            if cursor.rowcount != 1:
                raise StaleWrite(
                    f"screening {screening.code} changed (write based on {screening.row_version})"
                )
            self._changes(cursor, screening.id, w)
            self._append(cursor, screening.code, links, w.actor, now)
        return end

    def _changes(self, cursor: Any, sid: int, w: _StepWrite) -> None:
        """Write the step's changes to the answer and decision rows of screening ``sid``."""
        hot, actor, reason, now = self._hot, w.actor, w.reason, w.now
        for change in w.result.changes:
            match change:
                case AnswerRecorded():
                    self._record_answer(cursor, sid, change, w.raw_text, reason, actor, now)
                case AnswerRetired():
                    hot.retire.execute(
                        cursor, sid=sid, qid=change.question_id, now=now, reason=reason
                    )
                case DecisionRecorded():
                    d = change.decision
                    hot.decide.execute(
                        cursor,
                        sid=sid,
                        cid=d.criterion_id,
                        approve=d.approve,
                        reason=d.reason,
                        actor=actor,
                        now=now,
                    )
                case DecisionWithdrawn():
                    hot.withdraw.execute(cursor, sid=sid, cid=change.decision.criterion_id, now=now)

    def _step_at_once(self, w: _StepWrite, chain: Chain) -> tuple[Mapping[str, Any], Chain]:
        """Write a step in one PostgreSQL statement (``storage.one_statement``).

        Returns:
            What the statement returned of the row, and the new end of its audit chain.
        """
        assert self._steps is not None
        screening, result, events, values = w.screening, w.result, w.events, w.values
        actor, raw_text, reason, update_id, now = w.actor, w.raw_text, w.reason, w.update_id, w.now
        links = _links(screening.code, *chain, events, actor, now)
        advanced = {
            "row_version": screening.row_version + 1,
            "updated_at": now,
            "audit_seq": links[-1].seq,
            "audit_head": links[-1].hash,
            **values,
        }
        params: dict[str, Any] = {
            "sid": screening.id,
            "expected": screening.row_version,
            "now": now,
            "actor": actor,
            "reason": reason,
            "code": screening.code,
            **{f"p_{name}": value for name, value in advanced.items()},
        }
        if update_id is not None:
            params["uid"] = update_id
        for i, change in enumerate(result.changes):
            match change:
                case AnswerRecorded():
                    params[f"q{i}"] = change.question_id
                    params[f"raw{i}"] = raw_text
                    params[f"value{i}"] = value_to_json(change.value)
                    params[f"unit{i}"] = _unit(change.value)
                    params[f"normalised{i}"] = format_actual(change.value)
                case AnswerRetired():
                    params[f"q{i}"] = change.question_id
                case DecisionRecorded():
                    params[f"q{i}"] = change.decision.criterion_id
                    params[f"approve{i}"] = change.decision.approve
                    params[f"why{i}"] = change.decision.reason
                case DecisionWithdrawn():
                    params[f"q{i}"] = change.decision.criterion_id
        for j, link in enumerate(links):
            params[f"seq{j}"] = link.seq
            params[f"kind{j}"] = link.kind
            params[f"payload{j}"] = link.payload
            params[f"prev{j}"] = link.prev_hash
            params[f"hash{j}"] = link.hash
        statement = self._steps.for_shape(
            shape_of(update_id is not None, result.changes, len(links))
        )
        try:
            # Outside a transaction the statement is its own, committed before its reply.
            with driver_connection(self.engine) as cursor:
                row = statement.first(cursor, **params)
        except IntegrityError as exc:
            # The claim's key: another delivery of the update was recorded meanwhile.
            if update_id is not None and self.seen_update(update_id):
                raise DuplicateUpdate(update_id) from exc
            raise
        if row is None:  # the row was not at the version: nothing was written, claim included
            if update_id is not None and self.seen_update(update_id):
                raise DuplicateUpdate(update_id)
            raise StaleWrite(
                f"screening {screening.code} changed (write based on {screening.row_version})"
            )
        return row, (links[-1].seq, links[-1].hash)

    def _record_answer(
        self,
        cursor: Any,
        sid: int,
        change: AnswerRecorded,
        raw_text: str | None,
        reason: str | None,
        actor: int,
        now: datetime,
    ) -> None:
        statement = self._hot.answer
        statement.execute(
            cursor,
            sid=sid,
            qid=change.question_id,
            raw=raw_text,
            value=value_to_json(change.value),
            unit=_unit(change.value),
            normalised=format_actual(change.value),
            actor=actor,
            now=now,
            status="active",
        )
        if change.previous is not None:
            # Only a question that had a current answer has an active row to supersede (an
            # answer retired by a correction is no longer active). Superseding needs the new
            # row's id: a correction waits for the insert's reply (a round trip in a pipeline).
            inserted = statement.fetched(cursor)
            assert inserted is not None
            self._hot.supersede.execute(
                cursor,
                sid=sid,
                qid=change.question_id,
                new_id=inserted["id"],
                now=now,
                reason=reason,
            )

    def close(
        self,
        screening: Screening,
        kind: CloseKind,
        *,
        actor: int,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        with driver_connection(self.engine, write=True) as cursor:
            with pipelined(cursor):
                row = self._claim_and_lock(cursor, update_id, screening, now)
                status = kind if kind in CLOSE_STATUSES else row["status"]
                # The closer no longer works on it (whoever else had it open keeps it: the bot
                # treats a closed one as none). Before :meth:`_finish`, whose update is last.
                self._hot.put_down.execute(cursor, tid=actor, sid=screening.id)
                chain = self._finish(
                    cursor,
                    row,
                    [(f"screening_{kind}", {"reason": reason, "status": status})],
                    actor,
                    now,
                    {
                        "status": status,
                        "closed_at": now,
                        "close_kind": kind,
                        "close_reason": reason,
                        "closed_by": actor,
                    },
                )
            self._check_finished(cursor, row)
        # The row was at ``screening``'s version, so it held ``screening``'s content; the
        # write changed what is set here, and nothing else (no read back).
        closed = replace(
            screening,
            status=status,
            updated_at=now,
            row_version=screening.row_version + 1,
            closed_at=now,
            close_kind=kind,
            close_reason=reason,
            closed_by=actor,
        )
        return self._remember(closed, chain)

    # --- history ---
    def answers(self, screening_id: int) -> list[AnswerEntry]:
        """See :class:`storage.repository.Repository`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ANSWER).where(ANSWER.c.screening_id == screening_id).order_by(ANSWER.c.id)
            )
            return [
                AnswerEntry(
                    a.question_id,
                    a.raw_text,
                    value_from_json(a.value),
                    a.given_by,
                    a.given_at,
                    a.status,
                    a.changed_at,
                    a.change_reason,
                )
                for a in rows
            ]

    def decisions(self, screening_id: int) -> list[DecisionEntry]:
        """See :class:`storage.repository.Repository`."""
        with sqlmodel.Session(self.engine) as session:
            rows = session.exec(
                sqlmodel.select(DecisionRow)
                .where(DecisionRow.screening_id == screening_id)
                .order_by(sqlmodel.col(DecisionRow.id))
            )
            return [
                DecisionEntry(
                    r.criterion_id, r.approve, r.reason, r.decided_by, r.withdrawn_at is not None
                )
                for r in rows
            ]

    def audit_events(self, code: str) -> list[AuditEntry]:
        """See :class:`storage.repository.Repository`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AUDIT).where(AUDIT.c.screening_code == code).order_by(AUDIT.c.seq)
            )
            return [
                AuditEntry(
                    r.screening_code, r.seq, r.kind, r.payload, r.actor, r.at, r.prev_hash, r.hash
                )
                for r in rows
            ]

    def audit_trails(self, codes: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """See :class:`storage.repository.Repository`."""
        trails: dict[str, list[AuditEntry]] = {code: [] for code in codes}
        if not trails:
            return trails
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AUDIT)
                .where(AUDIT.c.screening_code.in_(list(trails)))
                .order_by(AUDIT.c.screening_code, AUDIT.c.seq)
            )
            for r in rows:
                trails[r.screening_code].append(
                    AuditEntry(
                        r.screening_code,
                        r.seq,
                        r.kind,
                        r.payload,
                        r.actor,
                        r.at,
                        r.prev_hash,
                        r.hash,
                    )
                )
        return trails

    def audited_codes(self) -> list[str]:
        """See :class:`storage.repository.Repository`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AUDIT.c.screening_code)
                .group_by(AUDIT.c.screening_code)
                .order_by(func.min(AUDIT.c.id))
            )
            return [r[0] for r in rows]

    def seen_update(self, update_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        return self._read(self._hot.seen, uid=update_id) is not None

    def mark_processed(self, update_id: int) -> None:
        """See :class:`storage.repository.Repository`."""
        with self._write.begin() as conn:
            conn.execute(
                _insert_or_ignore(conn, UPDATE).values(
                    update_id=update_id, processed_at=self._clock()
                )
            )
