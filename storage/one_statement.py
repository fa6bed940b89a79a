"""A step of a screening written to PostgreSQL as one statement: one round trip, committed.

A step writes several rows: the update's claim, the answers and decisions it changes, its audit
events and the screening row's next version. As separate statements in a transaction that is
three round trips to PostgreSQL even pipelined (the claim with the locked read, the changes,
the commit), and the write's wait for them was most of an answer's time there. PostgreSQL runs
data-modifying ``WITH`` queries as one statement, atomically; outside a transaction that
statement is its own transaction and is committed before its reply comes back.

Every part of the statement depends on the version-checked update of the screening row
(``advanced``): when the row is not at the version the step was computed from, the update
changes nothing and neither does the rest, claim included. The audit chain's next links are
computed beforehand from the row's head at that version, which the repository remembers from
its last read or write of the row; the version check makes sure it is still the head.

All sub-statements see the same snapshot and none sees another's rows, so a step whose
changes touch one row twice (retiring and superseding the same answer, say) is not written
this way (:func:`touches_rows_once`): the repository writes it statement by statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Dialect,
    Table,
    bindparam,
    exists,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.sql import ColumnElement

from flows.dialog import AnswerRecorded, AnswerRetired, Change, DecisionRecorded, DecisionWithdrawn
from storage.prepared import Prepared, Processors, prepare

__all__ = ["ADVANCED", "RETURNED", "StepStatements", "shape_of", "touches_rows_once"]

# What the statement sets on the screening row (``p_`` + name).
ADVANCED: tuple[str, ...] = (
    *("row_version", "updated_at", "audit_seq", "audit_head"),
    *("at", "revisiting", "status", "state"),
)

# What it returns of the row it advanced (what the step does not change).
RETURNED: tuple[str, ...] = ("closed_at", "close_kind", "close_reason", "closed_by")

# One change's part of the statement: its kind, and for an answer whether it supersedes one.
Part = tuple[str, bool]
# What a statement is compiled for: whether it claims an update, its parts, its audit events.
Shape = tuple[bool, tuple[Part, ...], int]


def touches_rows_once(changes: Sequence[Change]) -> bool:
    """Whether no two of ``changes`` concern the same question or the same criterion."""
    questions = [c.question_id for c in changes if isinstance(c, AnswerRecorded | AnswerRetired)]
    criteria = [
        c.decision.criterion_id
        for c in changes
        if isinstance(c, DecisionRecorded | DecisionWithdrawn)
    ]
    return len(set(questions)) == len(questions) and len(set(criteria)) == len(criteria)


def shape_of(claim: bool, changes: Sequence[Change], events: int) -> Shape:
    """The shape of the statement writing ``changes`` with ``events`` audit events."""
    parts: list[Part] = []
    for change in changes:
        match change:
            case AnswerRecorded():
                parts.append(("answer", change.previous is not None))
            case AnswerRetired():
                parts.append(("retire", False))
            case DecisionRecorded():
                parts.append(("decide", False))
            case DecisionWithdrawn():
                parts.append(("withdraw", False))
    return claim, tuple(parts), events


class StepStatements:
    """The one-statement writes of a step, compiled once per shape for one dialect.

    Parameters: ``sid`` and ``expected`` (the row and the version the step was computed
    from), ``p_`` + each of :data:`ADVANCED`, ``now``, ``actor``, ``reason`` and ``code``; ``uid``
    when the statement claims an update; per change ``i``, ``q{i}`` (its question or criterion)
    and for an answer ``raw{i}``, ``value{i}``, ``unit{i}`` and ``normalised{i}``, for a
    decision ``approve{i}`` and ``why{i}``; per audit event ``j``, ``seq{j}``, ``kind{j}``,
    ``payload{j}``, ``prev{j}`` and ``hash{j}``. The statement returns :data:`RETURNED` of
    the advanced row, or no row when the row was not at the expected version.
    """

    def __init__(
        self,
        dialect: Dialect,
        processors: Processors,
        tables: dict[str, Table],
    ) -> None:
        self.dialect = dialect
        self.processors = processors
        self.t = tables
        self._compiled: dict[Shape, Prepared] = {}

    def for_shape(self, shape: Shape) -> Prepared:
        """The compiled statement of ``shape``."""
        prepared = self._compiled.get(shape)
        if prepared is None:
            prepared = self._compiled[shape] = self._prepare(shape)
        return prepared

    def _param(self, table: str, column: str, name: str) -> ColumnElement[Any]:
        """A parameter named ``name`` typed as ``table.column`` (so it converts and casts alike)."""
        return bindparam(name, type_=self.t[table].c[column].type)

    def _end_active(
        self, question: ColumnElement[Any], only_if: Any, name: str, **more: Any
    ) -> Any:
        """The part that ends a question's active answer.

        The answer becomes ``retired``, or ``superseded`` by the new answer when ``more``
        names it (``superseded_by``).
        """
        answer = self.t["answer"]
        return (
            update(answer)
            .where(
                answer.c.screening_id == bindparam("sid"),
                answer.c.question_id == question,
                answer.c.status == "active",
                only_if,
            )
            .values(
                status="superseded" if more else "retired",
                changed_at=bindparam("now"),
                change_reason=bindparam("reason"),
                **more,
            )
            .cte(name)
        )

    def _prepare(self, shape: Shape) -> Prepared:
        claim, parts, events = shape
        screening, answer, decision = self.t["screening"], self.t["answer"], self.t["decision"]
        audit, claimed = self.t["audit_event"], self.t["processed_update"]
        p = self._param
        advanced = (
            update(screening)
            .where(
                screening.c.id == bindparam("sid"),
                screening.c.row_version == bindparam("expected"),
            )
            .values({name: bindparam(f"p_{name}") for name in ADVANCED})
            .returning(*(screening.c[name] for name in RETURNED))
            .cte("advanced")
        )
        # The condition of every part: the screening row was advanced.
        only_if = exists().select_from(advanced)
        ctes: list[Any] = []
        if claim:
            ctes.append(
                insert(claimed)
                .from_select(
                    ["update_id", "processed_at"],
                    select(
                        p("processed_update", "update_id", "uid"),
                        p("processed_update", "processed_at", "now"),
                    ).select_from(advanced),
                )
                .cte("claimed")
            )
        for i, (kind, supersedes) in enumerate(parts):
            q: ColumnElement[Any] = bindparam(f"q{i}")
            if kind == "answer":
                inserted = (
                    insert(answer)
                    .from_select(
                        [
                            *("screening_id", "question_id", "raw_text", "value", "unit"),
                            *("normalised", "given_by", "given_at", "status"),
                        ],
                        select(
                            p("answer", "screening_id", "sid"),
                            p("answer", "question_id", f"q{i}"),
                            p("answer", "raw_text", f"raw{i}"),
                            p("answer", "value", f"value{i}"),
                            p("answer", "unit", f"unit{i}"),
                            p("answer", "normalised", f"normalised{i}"),
                            p("answer", "given_by", "actor"),
                            p("answer", "given_at", "now"),
                            literal("active", answer.c.status.type),
                        ).select_from(advanced),
                    )
                    .returning(answer.c.id)
                    .cte(f"answered{i}")
                )
                ctes.append(inserted)
                if supersedes:
                    # The snapshot holds only the answer it supersedes as active, not the new one.
                    superseded_by = select(inserted.c.id).scalar_subquery()
                    ctes.append(
                        self._end_active(q, only_if, f"superseded{i}", superseded_by=superseded_by)
                    )
            elif kind == "retire":
                ctes.append(self._end_active(q, only_if, f"retired{i}"))
            elif kind == "decide":
                ctes.append(
                    insert(decision)
                    .from_select(
                        [
                            *("screening_id", "criterion_id", "approve", "reason"),
                            *("decided_by", "decided_at"),
                        ],
                        select(
                            p("decision", "screening_id", "sid"),
                            p("decision", "criterion_id", f"q{i}"),
                            p("decision", "approve", f"approve{i}"),
                            p("decision", "reason", f"why{i}"),
                            p("decision", "decided_by", "actor"),
                            p("decision", "decided_at", "now"),
                        ).select_from(advanced),
                    )
                    .cte(f"decided{i}")
                )
            else:  # withdraw
                ctes.append(
                    update(decision)
                    .where(
                        decision.c.screening_id == bindparam("sid"),
                        decision.c.criterion_id == q,
                        decision.c.withdrawn_at.is_(None),
                        only_if,
                    )
                    .values(withdrawn_at=bindparam("now"))
                    .cte(f"withdrawn{i}")
                )
        if events:
            rows = [
                select(
                    p("audit_event", "screening_code", "code"),
                    p("audit_event", "seq", f"seq{j}"),
                    p("audit_event", "kind", f"kind{j}"),
                    p("audit_event", "payload", f"payload{j}"),
                    p("audit_event", "actor", "actor"),
                    p("audit_event", "at", "now"),
                    p("audit_event", "prev_hash", f"prev{j}"),
                    p("audit_event", "hash", f"hash{j}"),
                ).select_from(advanced)
                for j in range(events)
            ]
            ctes.append(
                insert(audit)
                .from_select(
                    [
                        *("screening_code", "seq", "kind", "payload", "actor", "at"),
                        *("prev_hash", "hash"),
                    ],
                    rows[0] if len(rows) == 1 else union_all(*rows),
                )
                .cte("audited")
            )
        statement = select(*(advanced.c[name] for name in RETURNED)).add_cte(*ctes)
        return prepare(statement, self.dialect, processors=self.processors)
