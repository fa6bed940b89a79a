"""each staff member's conversation with the bot is kept with them

What a coordinator's chat is in the middle of (a value waiting for confirmation, a reason for a
correction being asked for, a screening code expected, lab values typed ahead) was held in the
bot process's memory, and lost by a restart. It is now a JSON document on the staff member's
row (their private chat with the bot), written whenever it changes, so a restart or another
bot process continues the conversation where it stood.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_member") as batch:
        batch.add_column(sa.Column("conversation", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_member") as batch:
        batch.drop_column("conversation")
