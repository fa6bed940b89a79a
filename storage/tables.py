"""SQLModel tables. Subjects appear only as a screening code: no name, no birth date.

Every timestamp is stored as UTC and read back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


class StaffMember(SQLModel, table=True):
    """An authorised user."""

    __tablename__ = "staff_member"

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    active: bool = True
    site: str | None = Field(default=None, max_length=100)
    # The screening this person is working on, so a restart or another device continues it.
    current_screening_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("screening.id", name="fk_staff_member_current_screening"),
            nullable=True,
        ),
    )
    # What this person's chat with the bot is in the middle of (bot.conversation), as JSON.
    conversation: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ProtocolVersion(SQLModel, table=True):
    """A protocol version as it was when screenings used it, addressable by content hash."""

    __tablename__ = "protocol_version"

    digest: str = Field(primary_key=True, max_length=64)
    protocol_id: str = Field(max_length=100, index=True)
    version: str = Field(max_length=40)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    stored_at: datetime = _ts()


# The screenings the review queue holds (the condition of its partial index).
REVIEW_QUEUE = "status = 'needs_review' AND closed_at IS NULL"
# The screenings a resume list can show (the condition of its partial index).
OPEN = "closed_at IS NULL"


class ScreeningRow(SQLModel, table=True):
    """A screening: its protocol version, dialog position and life cycle."""

    __tablename__ = "screening"
    __table_args__ = (
        # resume list: a staff member's unfinished screenings by recent activity. Only open
        # screenings are in it, in the list's own order (read backwards), so that the database
        # reads the newest few entries and their rows instead of sorting every open screening
        # of that coordinator
        Index(
            "ix_screening_resume",
            "created_by",
            "updated_at",
            "id",
            sqlite_where=text(OPEN),
            postgresql_where=text(OPEN),
        ),
        # investigator review queue: only screenings waiting for a decision are in it, so that
        # recording an answer (which changes ``updated_at``) leaves the index alone
        Index(
            "ix_screening_review",
            "updated_at",
            "id",
            sqlite_where=text(REVIEW_QUEUE),
            postgresql_where=text(REVIEW_QUEUE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    protocol_id: str = Field(max_length=100)
    protocol_version: str = Field(max_length=40)
    protocol_digest: str = Field(max_length=64, foreign_key="protocol_version.digest")
    status: str = Field(max_length=20)
    at: str = Field(max_length=100)
    revisiting: bool = False
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The site of the staff member who started it: staff of other sites may not open it.
    site: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()
    row_version: int = 1
    closed_at: datetime | None = _ts(nullable=True)
    close_kind: str | None = Field(default=None, max_length=30)
    close_reason: str | None = Field(default=None, max_length=1000)
    closed_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The current answers and decisions (a snapshot of what the answer and decision rows say,
    # written in the same transaction), so that reading a screening is one query.
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The audit chain's last event, so that appending needs no lookup.
    audit_seq: int = 0
    audit_head: str = Field(default="0" * 64, max_length=64)


class AnswerRow(SQLModel, table=True):
    """One answer as given. Never updated except to mark it superseded or retired."""

    __tablename__ = "answer"
    __table_args__ = (Index("ix_answer_screening_status", "screening_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id")
    question_id: str = Field(max_length=100)
    raw_text: str | None = Field(default=None, max_length=5000)
    value: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    unit: str | None = Field(default=None, max_length=40)
    normalised: str | None = Field(default=None, max_length=200)
    given_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    given_at: datetime = _ts()
    status: str = Field(default="active", max_length=20)
    superseded_by: int | None = Field(default=None, foreign_key="answer.id")
    changed_at: datetime | None = _ts(nullable=True)
    change_reason: str | None = Field(default=None, max_length=1000)


class DecisionRow(SQLModel, table=True):
    """An investigator's decision on an overridable criterion."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id", index=True)
    criterion_id: str = Field(max_length=100)
    approve: bool
    reason: str = Field(max_length=1000)
    decided_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    decided_at: datetime = _ts()
    withdrawn_at: datetime | None = _ts(nullable=True)


class AuditEventRow(SQLModel, table=True):
    """Append-only audit event, hash-chained per screening."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("screening_code", "seq", name="uq_audit_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    screening_code: str = Field(max_length=64)
    seq: int
    kind: str = Field(max_length=40)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    actor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    at: datetime = _ts()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class ProcessedUpdate(SQLModel, table=True):
    """A Telegram update id, stored in the same transaction as its effects."""

    __tablename__ = "processed_update"

    # On SQLite an ``INTEGER`` primary key is the row id itself (64-bit there too): one
    # b-tree to write per update instead of a table and its unique index.
    update_id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
        )
    )
    processed_at: datetime = _ts()


class NoticeRow(SQLModel, table=True):
    """A reminder or review request to send, and when it was sent (records.Notice)."""

    __tablename__ = "notice"

    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id", index=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(max_length=20)
    due_at: datetime = _ts(index=True)
    sent_at: datetime | None = _ts(nullable=True)
