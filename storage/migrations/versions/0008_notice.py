"""notices: reminders to send later, and who was asked to review a screening, and when

A coordinator can ask to be reminded of a screening waiting for a result; investigators are
notified when a screening needs their decision. Each notice is a row: it is sent when due by
whichever bot process claims it first (setting ``sent_at``), so it survives a restart and is
sent once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("screening_id", sa.Integer(), sa.ForeignKey("screening.id"), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notice_screening_id", "notice", ["screening_id"])
    op.create_index("ix_notice_due_at", "notice", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_notice_due_at", table_name="notice")
    op.drop_index("ix_notice_screening_id", table_name="notice")
    op.drop_table("notice")
