"""The rows a step writes: the claimed update, the locked screening, answers, decisions, events.

:class:`storage.sql.SqlRepository` runs these inside one transaction of a step; nothing here
commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from flows import AnswerRecorded, AnswerRetired, Change, DecisionRecorded, DecisionWithdrawn
from flows.showing import format_actual
from flows.values import LabResult, Quantity, value_to_json
from storage.audit import next_link
from storage.records import DuplicateUpdate, Screening, StaleWrite
from storage.tables import AnswerRow, AuditEventRow, DecisionRow, ProcessedUpdate, ScreeningRow


def _unit(value: Any) -> str | None:
    return value.unit if isinstance(value, Quantity | LabResult) else None


def claim(session: Session, update_id: int | None, now: datetime) -> None:
    """Claim a Telegram update id in this transaction; its primary key makes it atomic.

    Raises:
        DuplicateUpdate: Another transaction claimed it (a redelivery).
    """
    if update_id is None:
        return
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
    try:
        session.flush()
    except IntegrityError as exc:  # claimed before, here or by another process
        raise DuplicateUpdate(update_id) from exc


def locked(session: Session, screening: Screening, *, lock: bool) -> ScreeningRow:
    """The screening's row, locked for this transaction, at ``screening``'s version.

    Raises:
        StaleWrite: Someone else wrote it since ``screening`` was read.
    """
    query = select(ScreeningRow).where(ScreeningRow.id == screening.id)
    row = session.exec(query.with_for_update() if lock else query).one()
    if row.row_version != screening.row_version:
        raise StaleWrite(
            f"screening {row.code} changed (version {row.row_version}, "
            f"write based on {screening.row_version})"
        )
    return row


def append(
    session: Session,
    row: ScreeningRow,
    events: Sequence[tuple[str, dict[str, Any]]],
    actor: int | None,
    now: datetime,
) -> None:
    """Append audit events to the row's chain; the row keeps the chain's head."""
    for kind, payload in events:
        link = next_link(row.code, row.audit_head, row.audit_seq + 1, kind, payload, actor, now)
        session.add(
            AuditEventRow(
                screening_code=row.code,
                seq=link.seq,
                kind=kind,
                payload=payload,
                actor=actor,
                at=now,
                prev_hash=link.prev_hash,
                hash=link.hash,
            )
        )
        row.audit_seq, row.audit_head = link.seq, link.hash


def write_change(
    session: Session,
    sid: int,
    change: Change,
    actor: int,
    raw_text: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Write one change of a step to the answer and decision rows."""
    match change:
        case AnswerRecorded() | AnswerRetired():
            active: Sequence[AnswerRow] = []
            # A first answer has no active row to supersede (most answers are first ones).
            if not (isinstance(change, AnswerRecorded) and change.previous is None):
                active = session.exec(
                    select(AnswerRow).where(
                        AnswerRow.screening_id == sid,
                        AnswerRow.question_id == change.question_id,
                        AnswerRow.status == "active",
                    )
                ).all()
            new = None
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
            for old in active:
                old.status = "superseded" if new is not None else "retired"
                old.superseded_by = new.id if new is not None else None
                old.changed_at, old.change_reason = now, reason
                session.add(old)
        case DecisionRecorded(decision=d):
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
        case DecisionWithdrawn(decision=d):
            for decision in session.exec(
                select(DecisionRow).where(
                    DecisionRow.screening_id == sid,
                    DecisionRow.criterion_id == d.criterion_id,
                    col(DecisionRow.withdrawn_at).is_(None),
                )
            ):
                decision.withdrawn_at = now
                session.add(decision)
