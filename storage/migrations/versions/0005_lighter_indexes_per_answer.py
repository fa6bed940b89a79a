"""lighter indexes per answer

The review queue's index holds only the screenings waiting for a decision, so that recording an
answer (which changes ``updated_at``) no longer moves an entry of every screening in it. On
SQLite, the processed update ids become the table's row id instead of a column with a unique
index of its own. Each answer then writes three fewer pages to SQLite's log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_QUEUE = "status = 'needs_review' AND closed_at IS NULL"


def upgrade() -> None:
    op.drop_index("ix_screening_review", table_name="screening")
    op.create_index(
        "ix_screening_review",
        "screening",
        ["updated_at", "id"],
        unique=False,
        sqlite_where=sa.text(REVIEW_QUEUE),
        postgresql_where=sa.text(REVIEW_QUEUE),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a column's type in place: the table is copied (batch mode).
        with op.batch_alter_table("processed_update", recreate="always") as batch_op:
            batch_op.alter_column(
                "update_id",
                existing_type=sa.BigInteger(),
                type_=sa.Integer(),
                existing_nullable=False,
                autoincrement=False,
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("processed_update", recreate="always") as batch_op:
            batch_op.alter_column(
                "update_id",
                existing_type=sa.Integer(),
                type_=sa.BigInteger(),
                existing_nullable=False,
                autoincrement=False,
            )
    op.drop_index("ix_screening_review", table_name="screening")
    op.create_index(
        "ix_screening_review", "screening", ["status", "closed_at", "updated_at"], unique=False
    )
