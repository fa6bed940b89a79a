"""The repository port: everything the bot and the console need from storage.

Two implementations satisfy it and pass the same contract tests: :class:`storage.sql.SqlRepository`
(SQLite or PostgreSQL) and :class:`storage.memory.InMemoryRepository` (a fake for tests).
Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from typing import Protocol as Interface

from flows import Protocol, ScreeningState, Step
from flows.dialog import Event
from storage.records import (
    AnswerEntry,
    AuditEntry,
    CloseKind,
    DecisionEntry,
    Notice,
    Screening,
    Staff,
    Visitor,
)


class Repository(Interface):
    """Storage of staff, protocol versions, screenings, answers and the audit trail."""

    # --- staff ---
    def get_staff(self, telegram_id: int) -> Staff | None:
        """The staff member with this Telegram id, active or not."""
        ...

    def save_staff(self, staff: Staff) -> Staff:
        """Add or change a staff member."""
        ...

    def visitor(self, telegram_id: int, update_id: int) -> Visitor:
        """Who sent an update, read at one moment.

        Returns:
            The staff member (if any), the screening they work on (if any, whatever its state)
            and whether ``update_id`` was processed.
        """
        ...

    def list_staff(self) -> list[Staff]:
        """Every staff member, by name."""
        ...

    def set_current_screening(self, telegram_id: int, screening_id: int | None) -> None:
        """Remember which screening a staff member is working on."""
        ...

    def save_conversation(self, telegram_id: int, conversation: str | None) -> None:
        """Keep what a staff member's chat is in the middle of (``None``: nothing)."""
        ...

    # --- protocol versions ---
    def save_protocol(self, protocol: Protocol) -> None:
        """Keep a protocol version by its content hash (idempotent)."""
        ...

    def load_protocol(self, digest: str) -> Protocol | None:
        """A stored protocol version by content hash."""
        ...

    # --- screenings ---
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
        """Start a screening (at the actor's ``site``) and record its first audit event.

        ``noted`` is recorded in that event too (the trials offered, the pass it belongs to).

        The actor, if a staff member, works on it from then on (their current screening), in
        the same transaction.

        Raises:
            CodeTaken: The code is in use.
            DuplicateUpdate: ``update_id`` was processed before.
        """
        ...

    def get_screening(self, screening_id: int) -> Screening | None:
        """A screening by id."""
        ...

    def find_screening(self, code: str) -> Screening | None:
        """A screening by its code."""
        ...

    def unfinished(self, telegram_id: int, limit: int = 20) -> list[Screening]:
        """A staff member's unfinished screenings, most recent activity first."""
        ...

    def waiting(
        self, status: str, created_by: int | None = None, limit: int = 50
    ) -> list[Screening]:
        """Unfinished screenings with ``status`` (of one coordinator), longest waiting first."""
        ...

    # --- notices ---
    def add_notice(
        self, screening_id: int, telegram_id: int, kind: str, due_at: datetime, *, sent: bool
    ) -> Notice:
        """Keep a notice to send at ``due_at``, or one ``sent`` already."""
        ...

    def due_notices(self, now: datetime, kind: str) -> list[Notice]:
        """Notices of ``kind`` due by ``now`` and not sent, earliest first."""
        ...

    def claim_notice(self, notice_id: int) -> bool:
        """Mark a notice sent; ``False`` when it was already (another process sends it)."""
        ...

    def notices(self, screening_id: int) -> list[Notice]:
        """A screening's notices, in the order they were made."""
        ...

    def in_range(self, start: datetime, end: datetime) -> Iterator[Screening]:
        """Screenings created in ``[start, end)``, oldest first, streamed."""
        ...

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
        """Write a step's answers, decisions, new state and audit events in one transaction.

        Raises:
            StaleWrite: The screening changed since ``screening`` was read.
            DuplicateUpdate: ``update_id`` was processed before; nothing is written.
        """
        ...

    def close(
        self,
        screening: Screening,
        kind: CloseKind,
        *,
        actor: int,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening:
        """Sign, cancel or confirm the exclusion of a screening.

        If it was the actor's current screening, they have none afterwards (in the same
        transaction); anyone else who had it open keeps it.

        Raises:
            StaleWrite: The screening changed since it was read.
            DuplicateUpdate: ``update_id`` was processed before.
        """
        ...

    # --- history ---
    def answers(self, screening_id: int) -> list[AnswerEntry]:
        """Every answer ever given in a screening, in the order given."""
        ...

    def decisions(self, screening_id: int) -> list[DecisionEntry]:
        """Every investigator decision in a screening, in the order decided."""
        ...

    def audit_events(self, code: str) -> list[AuditEntry]:
        """A screening's audit events in sequence order."""
        ...

    def audit_trails(self, codes: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """The audit events of several screenings at once, each in sequence order.

        Bulk exports read them a page of screenings at a time: one query instead of one each.
        A code without events maps to an empty list.
        """
        ...

    def audited_codes(self) -> list[str]:
        """Codes of every screening with audit events."""
        ...

    def seen_update(self, update_id: int) -> bool:
        """Whether a Telegram update was processed."""
        ...

    def mark_processed(self, update_id: int) -> None:
        """Remember that a Telegram update was processed (idempotent)."""
        ...
