"""screening state snapshot and audit head

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:55:00

Adds to each screening the snapshot of its current answers and decisions and the head of its
audit chain, and fills them for existing screenings from the answer, decision and audit rows.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("screening", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("audit_seq", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("audit_head", sa.String(length=64), nullable=False, server_default=GENESIS)
        )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    screening = sa.table(
        "screening",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("state", sa.JSON),
        sa.column("audit_seq", sa.Integer),
        sa.column("audit_head", sa.String),
    )
    answer = sa.table(
        "answer",
        sa.column("id", sa.Integer),
        sa.column("screening_id", sa.Integer),
        sa.column("question_id", sa.String),
        sa.column("value", sa.JSON),
        sa.column("status", sa.String),
    )
    decision = sa.table(
        "decision",
        sa.column("screening_id", sa.Integer),
        sa.column("criterion_id", sa.String),
        sa.column("approve", sa.Boolean),
        sa.column("reason", sa.String),
        sa.column("withdrawn_at", sa.DateTime),
    )
    audit = sa.table(
        "audit_event",
        sa.column("screening_code", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("hash", sa.String),
    )
    for sid, code in bind.execute(sa.select(screening.c.id, screening.c.code)).all():
        state: dict[str, Any] = {"answers": {}, "retired": {}, "decisions": {}}
        rows = bind.execute(
            sa.select(answer.c.question_id, answer.c.value, answer.c.status)
            .where(answer.c.screening_id == sid)
            .order_by(answer.c.id)
        ).all()
        for qid, value, status in rows:
            if status == "active":
                state["answers"][qid] = value
        for qid, value, status in rows:
            if status == "retired" and qid not in state["answers"]:
                state["retired"][qid] = value
        for cid, approve, reason, withdrawn in bind.execute(
            sa.select(
                decision.c.criterion_id,
                decision.c.approve,
                decision.c.reason,
                decision.c.withdrawn_at,
            ).where(decision.c.screening_id == sid)
        ):
            if withdrawn is None:
                state["decisions"][cid] = {"approve": bool(approve), "reason": reason}
        head = bind.execute(
            sa.select(audit.c.seq, audit.c.hash)
            .where(audit.c.screening_code == code)
            .order_by(audit.c.seq.desc())
            .limit(1)
        ).first()
        seq, last = (head[0], head[1]) if head else (0, GENESIS)
        bind.execute(
            sa.update(screening)
            .where(screening.c.id == sid)
            .values(state=state, audit_seq=seq, audit_head=last)
        )


def downgrade() -> None:
    with op.batch_alter_table("screening", schema=None) as batch_op:
        batch_op.drop_column("audit_head")
        batch_op.drop_column("audit_seq")
        batch_op.drop_column("state")
