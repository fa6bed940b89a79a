"""the resume list's index holds open screenings in the list's order

The resume list shows a coordinator's open screenings, the most recently active first. Its index
held every screening of the coordinator by ``(created_by, closed_at, updated_at)``, so PostgreSQL
fetched every open screening of that coordinator and sorted them (a bitmap scan, one page per
row) to show the newest few. The index now holds only open screenings, by
``(created_by, updated_at, id)``: both databases read its newest entries backwards and stop after
the list's length, and closing a screening takes its entry out.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "closed_at IS NULL"


def upgrade() -> None:
    op.drop_index("ix_screening_resume", table_name="screening")
    op.create_index(
        "ix_screening_resume",
        "screening",
        ["created_by", "updated_at", "id"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_screening_resume", table_name="screening")
    op.create_index(
        "ix_screening_resume", "screening", ["created_by", "closed_at", "updated_at"], unique=False
    )
