"""The SQL repository (SQLite or PostgreSQL), written with SQLModel sessions.

Every method is one transaction in a :class:`sqlmodel.Session`; reads use ``select()`` on the
SQLModel tables of ``storage.tables``. A step of the dialog is written in one transaction:
claim the Telegram update id, lock the screening row and check its version, add the answer and
decision rows, append the chained audit events, move the row to its next version, commit. The
locking: ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite write transactions begin with
``BEGIN IMMEDIATE`` (``storage.db.writer``), which takes the database's write lock at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from flows import Protocol, ScreeningState, Step
from flows.dialog import Event
from flows.trail import step_events
from flows.values import value_from_json
from storage.audit import started
from storage.clock import utc_now
from storage.db import unavailable_as_storage_error, writer
from storage.records import (
    CLOSE_STATUSES,
    AnswerEntry,
    AuditEntry,
    CloseKind,
    CodeTaken,
    DecisionEntry,
    Notice,
    Role,
    Screening,
    Staff,
    Visitor,
    state_from_json,
    state_to_json,
)
from storage.steps import append, claim, locked, write_change
from storage.tables import (
    AnswerRow,
    AuditEventRow,
    DecisionRow,
    NoticeRow,
    ProcessedUpdate,
    ProtocolVersion,
    ScreeningRow,
    StaffMember,
)

# The columns that a record takes as they are.
_STAFF = {"telegram_id", "display_name", "active", "site", "current_screening_id", "conversation"}
_SCREENING = {"id", "code", "protocol_id", "protocol_version", "protocol_digest", "status"}
_SCREENING |= {"created_by", "created_at", "updated_at", "row_version", "site"}
_SCREENING |= {"closed_at", "close_kind", "close_reason", "closed_by"}
_ANSWER = {"question_id", "raw_text", "given_by", "given_at", "status", "changed_at"}
_ANSWER |= {"change_reason"}


def _staff(row: StaffMember) -> Staff:
    return Staff(role=Role(row.role), **row.model_dump(include=_STAFF))


def _screening(row: ScreeningRow) -> Screening:
    state = state_from_json(row.at, row.revisiting, row.state)
    return Screening(state=state, **row.model_dump(include=_SCREENING))


def _entry(r: AuditEventRow) -> AuditEntry:
    return AuditEntry(
        r.screening_code, r.seq, r.kind, r.payload, r.actor, r.at, r.prev_hash, r.hash
    )


class SqlRepository:
    """:class:`storage.repository.Repository` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._write = writer(engine)
        self._clock = clock
        self._locks = engine.dialect.name == "postgresql"  # row locks; SQLite locks the file
        self._stored: set[str] = set()  # protocol versions this process knows are stored

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with unavailable_as_storage_error(), Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with unavailable_as_storage_error(), Session(self._write, expire_on_commit=False) as s:
            yield s

    # --- staff ---
    def get_staff(self, telegram_id: int) -> Staff | None:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            row = session.exec(
                select(StaffMember).where(StaffMember.telegram_id == telegram_id)
            ).first()
            return _staff(row) if row is not None else None

    def save_staff(self, staff: Staff) -> Staff:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        for _ in range(2):  # a concurrent first insert of the same person: update it instead
            try:
                with self._writing() as session, session.begin():
                    row = session.exec(
                        select(StaffMember).where(StaffMember.telegram_id == staff.telegram_id)
                    ).first()
                    if row is None:
                        row = StaffMember(
                            telegram_id=staff.telegram_id,
                            display_name=staff.display_name,
                            role=staff.role.value,
                            created_at=now,
                            updated_at=now,
                        )
                    row.display_name, row.role = staff.display_name, staff.role.value
                    row.active, row.site, row.updated_at = staff.active, staff.site, now
                    session.add(row)
                    session.flush()
                    return _staff(row)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not save staff member {staff.telegram_id}")

    def visitor(self, telegram_id: int, update_id: int) -> Visitor:
        """See :class:`storage.repository.Repository`."""
        # One query, as every update starts with it: the person, their current screening,
        # and whether the update was processed.
        seen = exists().where(col(ProcessedUpdate.update_id) == update_id).label("seen")
        query = (
            select(StaffMember, ScreeningRow, seen)
            .outerjoin(ScreeningRow, col(ScreeningRow.id) == StaffMember.current_screening_id)
            .where(StaffMember.telegram_id == telegram_id)
        )
        with self._reading() as session:
            found = session.exec(query).first()
            if found is None:
                return Visitor(None, None, self.seen_update(update_id))
            staff, current, was_seen = found
            return Visitor(_staff(staff), _screening(current) if current else None, bool(was_seen))

    def list_staff(self) -> list[Staff]:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            rows = session.exec(
                select(StaffMember).order_by(col(StaffMember.display_name), col(StaffMember.id))
            )
            return [_staff(r) for r in rows]

    def set_current_screening(self, telegram_id: int, screening_id: int | None) -> None:
        """See :class:`storage.repository.Repository`."""
        self._set_on_staff(telegram_id, current_screening_id=screening_id)

    def save_conversation(self, telegram_id: int, conversation: str | None) -> None:
        """See :class:`storage.repository.Repository`."""
        self._set_on_staff(telegram_id, conversation=conversation)

    def _set_on_staff(self, telegram_id: int, **values: Any) -> None:
        with self._writing() as session, session.begin():
            query = select(StaffMember).where(StaffMember.telegram_id == telegram_id)
            row = session.exec(query).first()
            if row is not None:
                session.add(row.sqlmodel_update(values))

    # --- protocol versions ---
    def save_protocol(self, protocol: Protocol) -> None:
        """See :class:`storage.repository.Repository`."""
        try:
            with self._writing() as session, session.begin():
                if session.get(ProtocolVersion, protocol.digest) is None:
                    session.add(self._protocol_row(protocol))
        except IntegrityError:
            pass  # another process stored the same version at the same moment

    def _protocol_row(self, protocol: Protocol) -> ProtocolVersion:
        return ProtocolVersion(
            digest=protocol.digest,
            protocol_id=protocol.id,
            version=protocol.version,
            content=protocol.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            stored_at=self._clock(),
        )

    def load_protocol(self, digest: str) -> Protocol | None:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            row = session.get(ProtocolVersion, digest)
            return Protocol.model_validate(row.content) if row is not None else None

    # --- reading screenings ---
    def get_screening(self, screening_id: int) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            row = session.get(ScreeningRow, screening_id)
            return _screening(row) if row is not None else None

    def find_screening(self, code: str) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            row = session.exec(select(ScreeningRow).where(ScreeningRow.code == code)).first()
            return _screening(row) if row is not None else None

    def unfinished(self, telegram_id: int, limit: int = 20) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        # The condition and order of the partial index ix_screening_resume.
        query = (
            select(ScreeningRow)
            .where(ScreeningRow.created_by == telegram_id, col(ScreeningRow.closed_at).is_(None))
            .order_by(col(ScreeningRow.updated_at).desc(), col(ScreeningRow.id).desc())
            .limit(limit)
        )
        with self._reading() as session:
            return [_screening(r) for r in session.exec(query)]

    def waiting(
        self, status: str, created_by: int | None = None, limit: int = 50
    ) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        query = select(ScreeningRow).where(
            ScreeningRow.status == status, col(ScreeningRow.closed_at).is_(None)
        )
        if created_by is not None:
            query = query.where(ScreeningRow.created_by == created_by)
        query = query.order_by(col(ScreeningRow.updated_at), col(ScreeningRow.id)).limit(limit)
        with self._reading() as session:
            return [_screening(r) for r in session.exec(query)]

    # --- notices ---
    def add_notice(
        self, screening_id: int, telegram_id: int, kind: str, due_at: datetime, *, sent: bool
    ) -> Notice:
        """See :class:`storage.repository.Repository`."""
        row = NoticeRow(
            screening_id=screening_id,
            telegram_id=telegram_id,
            kind=kind,
            due_at=due_at,
            sent_at=self._clock() if sent else None,
        )
        with self._writing() as session, session.begin():
            session.add(row)
            session.flush()
            return Notice(**row.model_dump())

    def due_notices(self, now: datetime, kind: str) -> list[Notice]:
        """See :class:`storage.repository.Repository`."""
        query = (
            select(NoticeRow)
            .where(
                NoticeRow.kind == kind, NoticeRow.due_at <= now, col(NoticeRow.sent_at).is_(None)
            )
            .order_by(col(NoticeRow.due_at), col(NoticeRow.id))
        )
        with self._reading() as session:
            return [Notice(**r.model_dump()) for r in session.exec(query)]

    def claim_notice(self, notice_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        with self._writing() as session, session.begin():
            row = session.get(NoticeRow, notice_id, with_for_update=self._locks)
            if row is None or row.sent_at is not None:
                return False
            row.sent_at = self._clock()
            session.add(row)
            return True

    def notices(self, screening_id: int) -> list[Notice]:
        """See :class:`storage.repository.Repository`."""
        query = (
            select(NoticeRow)
            .where(NoticeRow.screening_id == screening_id)
            .order_by(col(NoticeRow.id))
        )
        with self._reading() as session:
            return [Notice(**r.model_dump()) for r in session.exec(query)]

    def in_range(self, start: datetime, end: datetime, batch: int = 500) -> Iterator[Screening]:
        """See :class:`storage.repository.Repository` (keyset-paginated, bounded memory)."""
        last_id = 0
        while True:
            query = (
                select(ScreeningRow)
                .where(
                    ScreeningRow.created_at >= start,
                    ScreeningRow.created_at < end,
                    col(ScreeningRow.id) > last_id,
                )
                .order_by(col(ScreeningRow.id))
                .limit(batch)
            )
            with self._reading() as session:
                records = [_screening(r) for r in session.exec(query)]
            if not records:
                return
            yield from sorted(records, key=lambda s: (s.created_at, s.id))
            last_id = records[-1].id

    # --- writing ---
    def create_screening(
        self,
        code: str,
        protocol: Protocol,
        state: ScreeningState,
        *,
        actor: int,
        update_id: int | None = None,
        site: str | None = None,
        noted: dict[str, Any] | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        if protocol.digest not in self._stored:  # versions are never changed or removed
            self.save_protocol(protocol)
            self._stored.add(protocol.digest)
        now = self._clock()
        try:
            with self._writing() as session, session.begin():
                claim(session, update_id, now)  # first: a redelivery is a duplicate
                taken = session.exec(select(ScreeningRow.id).where(ScreeningRow.code == code))
                if taken.first() is not None:
                    raise CodeTaken(code)
                row = ScreeningRow(
                    code=code,
                    protocol_id=protocol.id,
                    protocol_version=protocol.version,
                    protocol_digest=protocol.digest,
                    status="in_progress",
                    at=state.at,
                    revisiting=state.revisiting,
                    created_by=actor,
                    site=site,
                    created_at=now,
                    updated_at=now,
                    state=state_to_json(state),
                )
                first = [("screening_started", started(protocol, state.at, noted))]
                append(session, row, first, actor, now)
                session.add(row)
                session.flush()
                staff = session.exec(
                    select(StaffMember).where(StaffMember.telegram_id == actor)
                ).first()
                if staff is not None:
                    staff.current_screening_id = row.id
                    session.add(staff)
                return _screening(row)
        except IntegrityError as exc:  # the code, taken by a concurrent transaction
            raise CodeTaken(code) from exc

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
        with self._writing() as session, session.begin():
            claim(session, update_id, now)  # first: a redelivery is a duplicate
            row = locked(session, screening, lock=self._locks)
            assert row.id is not None
            for change in result.changes:
                write_change(session, row.id, change, actor, raw_text, reason, now)
            append(session, row, step_events(event, result, raw_text, reason), actor, now)
            state = result.state
            row.at, row.revisiting, row.state = state.at, state.revisiting, state_to_json(state)
            row.status, row.updated_at = result.verdict.status.value, now
            row.row_version += 1
            session.add(row)
            session.flush()
            return _screening(row)

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
        with self._writing() as session, session.begin():
            claim(session, update_id, now)
            row = locked(session, screening, lock=self._locks)
            status = kind if kind in CLOSE_STATUSES else row.status
            closed = {"reason": reason, "status": status}
            append(session, row, [(f"screening_{kind}", closed)], actor, now)
            row.status, row.updated_at, row.row_version = status, now, row.row_version + 1
            row.closed_at, row.close_kind = now, kind
            row.close_reason, row.closed_by = reason, actor
            session.add(row)
            # The closer no longer works on it; anyone else who had it open keeps it.
            staff = session.exec(
                select(StaffMember).where(
                    StaffMember.telegram_id == actor, StaffMember.current_screening_id == row.id
                )
            ).first()
            if staff is not None:
                staff.current_screening_id = None
                session.add(staff)
            session.flush()
            return _screening(row)

    # --- history ---
    def answers(self, screening_id: int) -> list[AnswerEntry]:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            rows = session.exec(
                select(AnswerRow)
                .where(AnswerRow.screening_id == screening_id)
                .order_by(col(AnswerRow.id))
            )
            return [
                AnswerEntry(value=value_from_json(a.value), **a.model_dump(include=_ANSWER))
                for a in rows
            ]

    def decisions(self, screening_id: int) -> list[DecisionEntry]:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            rows = session.exec(
                select(DecisionRow)
                .where(DecisionRow.screening_id == screening_id)
                .order_by(col(DecisionRow.id))
            )
            return [
                DecisionEntry(
                    r.criterion_id, r.approve, r.reason, r.decided_by, r.withdrawn_at is not None
                )
                for r in rows
            ]

    def audit_events(self, code: str) -> list[AuditEntry]:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            rows = session.exec(
                select(AuditEventRow)
                .where(AuditEventRow.screening_code == code)
                .order_by(col(AuditEventRow.seq))
            )
            return [_entry(r) for r in rows]

    def audit_trails(self, codes: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """See :class:`storage.repository.Repository`."""
        trails: dict[str, list[AuditEntry]] = {code: [] for code in codes}
        if not trails:
            return trails
        with self._reading() as session:
            rows = session.exec(
                select(AuditEventRow)
                .where(col(AuditEventRow.screening_code).in_(list(trails)))
                .order_by(col(AuditEventRow.screening_code), col(AuditEventRow.seq))
            )
            for r in rows:
                trails[r.screening_code].append(_entry(r))
        return trails

    def audited_codes(self) -> list[str]:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            rows = session.exec(
                select(AuditEventRow.screening_code)
                .group_by(col(AuditEventRow.screening_code))
                .order_by(func.min(AuditEventRow.id))
            )
            return list(rows)

    def seen_update(self, update_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        with self._reading() as session:
            return session.get(ProcessedUpdate, update_id) is not None

    def mark_processed(self, update_id: int) -> None:
        """See :class:`storage.repository.Repository`."""
        try:
            with self._writing() as session, session.begin():
                if session.get(ProcessedUpdate, update_id) is None:
                    session.add(ProcessedUpdate(update_id=update_id, processed_at=self._clock()))
        except IntegrityError:
            pass  # marked by a concurrent transaction: what was wanted
