"""The SQL repository (SQLite or PostgreSQL through SQLModel)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from flows import (
    AnswerRecorded,
    AnswerRetired,
    Decision,
    DecisionRecorded,
    DecisionWithdrawn,
    Protocol,
    ScreeningState,
    Step,
)
from flows.dialog import Event
from flows.rules import format_actual
from flows.values import LabResult, Quantity, value_from_json, value_to_json
from storage.audit import GENESIS, next_link, step_events
from storage.memory import utc_now
from storage.records import (
    AnswerEntry,
    AuditEntry,
    CloseKind,
    CodeTaken,
    DuplicateUpdate,
    Role,
    Screening,
    Staff,
    StaleWrite,
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


def _staff(row: StaffMember) -> Staff:
    return Staff(
        row.telegram_id,
        row.display_name,
        Role(row.role),
        row.active,
        row.site,
        row.current_screening_id,
    )


def _unit(value: Any) -> str | None:
    if isinstance(value, Quantity | LabResult):
        return value.unit
    return None


class SqlRepository:
    """Repository over an SQLAlchemy engine; each public method is one transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._clock = clock
        self._locking = engine.dialect.name == "postgresql"

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- staff ---
    def get_staff(self, telegram_id: int) -> Staff | None:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            row = session.exec(select(StaffMember).where(StaffMember.telegram_id == telegram_id))
            found = row.first()
            return _staff(found) if found else None

    def save_staff(self, staff: Staff) -> Staff:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        with self._session() as session, session.begin():
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

    def set_current_screening(self, telegram_id: int, screening_id: int | None) -> None:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session, session.begin():
            session.execute(
                update(StaffMember)
                .where(col(StaffMember.telegram_id) == telegram_id)
                .values(current_screening_id=screening_id)
            )

    def list_staff(self) -> list[Staff]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(StaffMember).order_by(
                    col(StaffMember.display_name), col(StaffMember.telegram_id)
                )
            )
            return [_staff(r) for r in rows]

    # --- protocols ---
    def save_protocol(self, protocol: Protocol) -> None:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session, session.begin():
            self._save_protocol(session, protocol)

    def _save_protocol(self, session: Session, protocol: Protocol) -> None:
        if session.get(ProtocolVersion, protocol.digest) is None:
            session.add(
                ProtocolVersion(
                    digest=protocol.digest,
                    protocol_id=protocol.id,
                    version=protocol.version,
                    content=protocol.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                    stored_at=self._clock(),
                )
            )
            session.flush()

    def load_protocol(self, digest: str) -> Protocol | None:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            row = session.get(ProtocolVersion, digest)
            return Protocol.model_validate(row.content) if row else None

    # --- reading screenings ---
    def _records(self, session: Session, rows: Sequence[ScreeningRow]) -> list[Screening]:
        """Rebuild records with their dialog state, with two queries for any number of rows."""
        ids = [r.id for r in rows if r.id is not None]
        if not ids:
            return []
        answers: dict[int, list[AnswerRow]] = {i: [] for i in ids}
        for a in session.exec(
            select(AnswerRow)
            .where(col(AnswerRow.screening_id).in_(ids), col(AnswerRow.status) != "superseded")
            .order_by(col(AnswerRow.id))
        ):
            answers[a.screening_id].append(a)
        decisions: dict[int, list[DecisionRow]] = {i: [] for i in ids}
        for d in session.exec(
            select(DecisionRow).where(
                col(DecisionRow.screening_id).in_(ids), col(DecisionRow.withdrawn_at).is_(None)
            )
        ):
            decisions[d.screening_id].append(d)
        return [self._record(r, answers[cast(int, r.id)], decisions[cast(int, r.id)]) for r in rows]

    @staticmethod
    def _record(
        row: ScreeningRow, answers: list[AnswerRow], decisions: list[DecisionRow]
    ) -> Screening:
        active = {a.question_id: value_from_json(a.value) for a in answers if a.status == "active"}
        retired = {
            a.question_id: value_from_json(a.value)
            for a in answers
            if a.status == "retired" and a.question_id not in active
        }
        decided = {d.criterion_id: Decision(d.criterion_id, d.approve, d.reason) for d in decisions}
        state = ScreeningState(row.at, active, retired, decided, row.revisiting)
        return Screening(
            id=cast(int, row.id),
            code=row.code,
            protocol_id=row.protocol_id,
            protocol_version=row.protocol_version,
            protocol_digest=row.protocol_digest,
            status=row.status,
            state=state,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row_version=row.row_version,
            closed_at=row.closed_at,
            close_kind=cast(CloseKind | None, row.close_kind),
            close_reason=row.close_reason,
            closed_by=row.closed_by,
        )

    def _one(self, where: Any) -> Screening | None:
        with self._session() as session:
            row = session.exec(select(ScreeningRow).where(where)).first()
            return self._records(session, [row])[0] if row else None

    def get_screening(self, screening_id: int) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        return self._one(ScreeningRow.id == screening_id)

    def find_screening(self, code: str) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        return self._one(ScreeningRow.code == code)

    def unfinished(self, telegram_id: int, limit: int = 20) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(ScreeningRow)
                .where(
                    ScreeningRow.created_by == telegram_id, col(ScreeningRow.closed_at).is_(None)
                )
                .order_by(col(ScreeningRow.updated_at).desc(), col(ScreeningRow.id).desc())
                .limit(limit)
            ).all()
            return self._records(session, rows)

    def needing_review(self, limit: int = 50) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(ScreeningRow)
                .where(ScreeningRow.status == "needs_review", col(ScreeningRow.closed_at).is_(None))
                .order_by(col(ScreeningRow.updated_at), col(ScreeningRow.id))
                .limit(limit)
            ).all()
            return self._records(session, rows)

    def in_range(self, start: datetime, end: datetime, batch: int = 500) -> Iterator[Screening]:
        """See :class:`storage.repository.Repository` (keyset-paginated, bounded memory)."""
        last_id = 0
        while True:
            with self._session() as session:
                rows = session.exec(
                    select(ScreeningRow)
                    .where(
                        col(ScreeningRow.created_at) >= start,
                        col(ScreeningRow.created_at) < end,
                        col(ScreeningRow.id) > last_id,
                    )
                    .order_by(col(ScreeningRow.id))
                    .limit(batch)
                ).all()
                records = self._records(session, rows)
            if not records:
                return
            yield from sorted(records, key=lambda s: (s.created_at, s.id))
            last_id = records[-1].id

    # --- writing ---
    def _claim_update(self, session: Session, update_id: int | None, now: datetime) -> None:
        if update_id is None:
            return
        if session.get(ProcessedUpdate, update_id) is not None:
            raise DuplicateUpdate(update_id)
        session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
        try:
            session.flush()
        except IntegrityError as exc:  # another process claimed it concurrently
            raise DuplicateUpdate(update_id) from exc

    def _append_audit(
        self,
        session: Session,
        code: str,
        events: list[tuple[str, dict[str, Any]]],
        actor: int | None,
        now: datetime,
    ) -> None:
        last = session.exec(
            select(AuditEventRow)
            .where(AuditEventRow.screening_code == code)
            .order_by(col(AuditEventRow.seq).desc())
            .limit(1)
        ).first()
        seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
        for kind, payload in events:
            seq += 1
            link = next_link(code, prev, seq, kind, payload, actor, now)
            session.add(
                AuditEventRow(
                    screening_code=code,
                    seq=seq,
                    kind=kind,
                    payload=link.payload,
                    actor=actor,
                    at=now,
                    prev_hash=prev,
                    hash=link.hash,
                )
            )
            prev = link.hash

    def _lock(self, session: Session, screening: Screening) -> ScreeningRow:
        query = select(ScreeningRow).where(ScreeningRow.id == screening.id)
        if self._locking:
            query = query.with_for_update()
        row = session.exec(query).one()
        if row.row_version != screening.row_version:
            raise StaleWrite(
                f"screening {row.code} changed (version {row.row_version}, "
                f"write based on {screening.row_version})"
            )
        return row

    def _bump(self, session: Session, row: ScreeningRow, values: dict[str, Any]) -> None:
        # The version check is repeated in the UPDATE itself so that a concurrent writer
        # that slipped past the read can never be overwritten silently.
        result = session.execute(
            update(ScreeningRow)
            .where(col(ScreeningRow.id) == row.id, col(ScreeningRow.row_version) == row.row_version)
            .values(row_version=row.row_version + 1, **values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleWrite(f"screening {row.code} changed during the write")

    def create_screening(
        self,
        code: str,
        protocol: Protocol,
        state: ScreeningState,
        *,
        actor: int,
        update_id: int | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        now = self._clock()
        try:
            with self._session() as session, session.begin():
                if session.exec(select(ScreeningRow.id).where(ScreeningRow.code == code)).first():
                    raise CodeTaken(code)
                self._claim_update(session, update_id, now)
                self._save_protocol(session, protocol)
                row = ScreeningRow(
                    code=code,
                    protocol_id=protocol.id,
                    protocol_version=protocol.version,
                    protocol_digest=protocol.digest,
                    status="in_progress",
                    at=state.at,
                    revisiting=state.revisiting,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                self._append_audit(
                    session,
                    code,
                    [
                        (
                            "screening_started",
                            {
                                "protocol": protocol.id,
                                "version": protocol.version,
                                "digest": protocol.digest,
                                "outcome": {
                                    "at": state.at,
                                    "status": "in_progress",
                                    "excluded_by": [],
                                },
                            },
                        )
                    ],
                    actor,
                    now,
                )
                return self._record(row, [], [])
        except IntegrityError as exc:  # a concurrent insert of the same code
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
        with self._session() as session, session.begin():
            row = self._lock(session, screening)
            self._claim_update(session, update_id, now)
            sid = cast(int, row.id)
            for change in result.changes:
                match change:
                    case AnswerRecorded() | AnswerRetired():
                        self._write_answer(session, sid, change, raw_text, reason, actor, now)
                    case DecisionRecorded():
                        d = change.decision
                        session.add(
                            DecisionRow(
                                screening_id=sid,
                                criterion_id=d.criterion_id,
                                approve=d.approve,
                                reason=d.reason,
                                decided_by=actor,
                                decided_at=now,
                            )
                        )
                    case DecisionWithdrawn():
                        session.execute(
                            update(DecisionRow)
                            .where(
                                col(DecisionRow.screening_id) == sid,
                                col(DecisionRow.criterion_id) == change.decision.criterion_id,
                                col(DecisionRow.withdrawn_at).is_(None),
                            )
                            .values(withdrawn_at=now)
                        )
            self._append_audit(
                session, row.code, step_events(event, result, raw_text, reason), actor, now
            )
            status = result.verdict.status.value
            self._bump(
                session,
                row,
                {
                    "at": result.state.at,
                    "revisiting": result.state.revisiting,
                    "status": status,
                    "updated_at": now,
                },
            )
        record = self.get_screening(screening.id)
        assert record is not None
        return record

    def _write_answer(
        self,
        session: Session,
        sid: int,
        change: AnswerRecorded | AnswerRetired,
        raw_text: str | None,
        reason: str | None,
        actor: int,
        now: datetime,
    ) -> None:
        active = session.exec(
            select(AnswerRow).where(
                AnswerRow.screening_id == sid,
                AnswerRow.question_id == change.question_id,
                AnswerRow.status == "active",
            )
        ).first()
        new: AnswerRow | None = None
        if isinstance(change, AnswerRecorded):
            new = AnswerRow(
                screening_id=sid,
                question_id=change.question_id,
                raw_text=raw_text,
                value=value_to_json(change.value),
                unit=_unit(change.value),
                normalised=format_actual(change.value),
                given_by=actor,
                given_at=now,
            )
            session.add(new)
            session.flush()
        if active is not None:
            active.status = "superseded" if new is not None else "retired"
            active.superseded_by = new.id if new is not None else None
            active.changed_at, active.change_reason = now, reason
            session.add(active)

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
        with self._session() as session, session.begin():
            row = self._lock(session, screening)
            self._claim_update(session, update_id, now)
            status = "cancelled" if kind == "cancelled" else row.status
            self._append_audit(
                session,
                row.code,
                [(f"screening_{kind}", {"reason": reason, "status": status})],
                actor,
                now,
            )
            self._bump(
                session,
                row,
                {
                    "status": status,
                    "closed_at": now,
                    "close_kind": kind,
                    "close_reason": reason,
                    "closed_by": actor,
                    "updated_at": now,
                },
            )
        record = self.get_screening(screening.id)
        assert record is not None
        return record

    # --- history ---
    def answers(self, screening_id: int) -> list[AnswerEntry]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(AnswerRow)
                .where(AnswerRow.screening_id == screening_id)
                .order_by(col(AnswerRow.id))
            )
            return [
                AnswerEntry(
                    a.question_id,
                    a.raw_text,
                    value_from_json(a.value),
                    a.given_by,
                    a.given_at,
                    cast(Any, a.status),
                    a.changed_at,
                    a.change_reason,
                )
                for a in rows
            ]

    def audit_events(self, code: str) -> list[AuditEntry]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(AuditEventRow)
                .where(AuditEventRow.screening_code == code)
                .order_by(col(AuditEventRow.seq))
            )
            return [
                AuditEntry(
                    r.screening_code, r.seq, r.kind, r.payload, r.actor, r.at, r.prev_hash, r.hash
                )
                for r in rows
            ]

    def audited_codes(self) -> list[str]:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            rows = session.exec(
                select(AuditEventRow.screening_code)
                .group_by(col(AuditEventRow.screening_code))
                .order_by(func.min(AuditEventRow.id))
            )
            return list(rows)

    def seen_update(self, update_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        with self._session() as session:
            return session.get(ProcessedUpdate, update_id) is not None
