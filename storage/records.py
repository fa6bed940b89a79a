"""What the repositories hand out: frozen records, independent of how rows are stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from flows import AnswerValue, Decision, ScreeningState
from flows.values import value_from_json, value_to_json


class Role(StrEnum):
    """What a staff member may do."""

    COORDINATOR = "coordinator"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Staff:
    """An authorised user, identified by Telegram user id."""

    telegram_id: int
    display_name: str
    role: Role
    active: bool = True
    site: str | None = None
    current_screening_id: int | None = None
    conversation: str | None = None
    """What their chat with the bot is in the middle of, as the bot wrote it (JSON)."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who sent an update, what they are working on, and whether the update is a redelivery.

    Read together, in one query, at the start of every update.
    """

    staff: Staff | None
    current: Screening | None
    seen: bool


CloseKind = Literal["signed", "cancelled", "exclusion_confirmed", "not_completed"]

CLOSE_STATUSES: tuple[CloseKind, ...] = ("cancelled", "not_completed")
"""Closing this way replaces the screening's status: its verdict was never reached."""


PASS_SEPARATOR = "/"
"""Joins a pass's code to a trial's id (``S-101/<trial id>``); user codes cannot contain it."""


@dataclass(frozen=True, slots=True)
class Screening:
    """A screening as stored: its protocol version, dialog state and life cycle.

    ``status`` is the verdict status (``in_progress``, ``ineligible``, ``needs_review``,
    ``pending``, ``eligible``) or ``cancelled``. A screening is unfinished until it is closed
    (signed, cancelled, or its exclusion confirmed). ``row_version`` increases with every write:
    a write based on an older version is refused.
    """

    id: int
    code: str
    protocol_id: str
    protocol_version: str
    protocol_digest: str
    status: str
    state: ScreeningState
    created_by: int
    created_at: datetime
    updated_at: datetime
    row_version: int
    closed_at: datetime | None = None
    close_kind: CloseKind | None = None
    close_reason: str | None = None
    closed_by: int | None = None
    site: str | None = None

    @property
    def unfinished(self) -> bool:
        """Open for more answers, corrections or decisions."""
        return self.closed_at is None

    @property
    def pass_code(self) -> str | None:
        """The code of the pass over several trials this screening is one trial of, if any."""
        code, separator, _ = self.code.partition(PASS_SEPARATOR)
        return code if separator else None


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to a staff member about a screening: a reminder, or a review request.

    ``due_at`` is when it is to be sent, ``sent_at`` when it was (``None``: not yet).
    """

    id: int
    screening_id: int
    telegram_id: int
    kind: str
    due_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class AnswerEntry:
    """One answer as given, including superseded and retired ones (the full history)."""

    question_id: str
    raw_text: str | None
    value: AnswerValue
    given_by: int
    given_at: datetime
    status: Literal["active", "superseded", "retired"]
    changed_at: datetime | None = None
    change_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """An investigator's decision as stored; ``withdrawn`` once a correction voided it."""

    criterion_id: str
    approve: bool
    reason: str
    decided_by: int
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One append-only audit event, chained to the previous one of its screening."""

    screening_code: str
    seq: int
    kind: str
    payload: dict[str, Any] = field(hash=False)
    actor: int | None
    at: datetime
    prev_hash: str
    hash: str


def state_to_json(state: ScreeningState) -> dict[str, Any]:
    """The dialog state's data (not its position) as JSON, exactly (decimals as strings)."""
    return {
        "answers": {q: value_to_json(v) for q, v in state.answers.items()},
        "retired": {q: value_to_json(v) for q, v in state.retired.items()},
        "decisions": {
            c: {"approve": d.approve, "reason": d.reason} for c, d in state.decisions.items()
        },
    }


def state_from_json(at: str, revisiting: bool, data: dict[str, Any]) -> ScreeningState:
    """Rebuild a dialog state from :func:`state_to_json` and its position."""
    return ScreeningState(
        at,
        {q: value_from_json(v) for q, v in data.get("answers", {}).items()},
        {q: value_from_json(v) for q, v in data.get("retired", {}).items()},
        {
            c: Decision(c, bool(d["approve"]), str(d["reason"]))
            for c, d in data.get("decisions", {}).items()
        },
        revisiting,
    )


class StorageError(Exception):
    """Base of the errors storage reports to its callers."""


class StorageUnavailable(StorageError):
    """The database cannot be reached (down, locked, refusing); nothing was written."""


class StaleWrite(StorageError):
    """The screening changed since it was read (another device or process wrote first)."""


class DuplicateUpdate(StorageError):
    """This Telegram update was already processed; nothing was written."""


class CodeTaken(StorageError):
    """A screening with this code exists already."""
