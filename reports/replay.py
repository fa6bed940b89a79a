"""The audit trail proves what is stored: replay its events through the engine, compare.

The hash chain proves that the events were not edited, removed or reordered. What the bot shows
and exports, though, is read from the answer, decision and screening rows. :func:`check` replays
a screening's events through the dialog engine from its start, checks that each step's events
are exactly those the engine records for it, and compares what the replay arrives at with the
stored rows: every answer (value, text as typed, who, status, reason for change), every
decision, the dialog state, the status and how the screening was closed. Any difference is
named with its row and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flows import (
    Answer,
    AnswerRecorded,
    AnswerRetired,
    CompletePending,
    Decide,
    Decision,
    DecisionRecorded,
    DecisionWithdrawn,
    GoBack,
    Protocol,
    ScreeningState,
    start,
    step,
)
from flows.dialog import Event
from flows.trail import step_events
from flows.values import value_from_json, value_to_json
from reports.chain import verify_entries
from storage.records import AnswerEntry, AuditEntry, DecisionEntry, Screening
from storage.repository import Repository


@dataclass
class _Row:
    """An answer row as the events say it must be."""

    question_id: str
    raw_text: str | None
    value: dict[str, Any]
    given_by: int | None
    status: str = "active"
    change_reason: str | None = None


def _cause(entry: AuditEntry) -> Event | None:
    """The dialog event that a step's first audit event records."""
    p = entry.payload
    match entry.kind:
        case "answer_recorded" | "answer_corrected":
            return Answer(str(p["question"]), value_from_json(p["value"]))
        case "went_back":
            return GoBack(str(p["question"]))
        case "completing_pending":
            return CompletePending()
        case "decision_recorded":
            return Decide(Decision(str(p["criterion"]), bool(p["approve"]), str(p["reason"])))
    return None


def _same_state(stored: ScreeningState, replayed: ScreeningState) -> list[str]:
    problems = []
    for name in ("at", "answers", "retired", "decisions", "revisiting"):
        a, b = getattr(stored, name), getattr(replayed, name)
        if name in ("answers", "retired", "decisions"):
            a, b = dict(a), dict(b)  # mappings of either kind compare by content
        if a != b:
            problems.append(f"screening: state.{name} is {a!r}, the events give {b!r}")
    return problems


def check(
    protocol: Protocol,
    screening: Screening,
    entries: Sequence[AuditEntry],
    answers: Sequence[AnswerEntry],
    decisions: Sequence[DecisionEntry],
) -> list[str]:
    """Replay a screening's audit events and compare them with its stored rows.

    Args:
        protocol: The protocol version the screening runs on.
        screening: Its row.
        entries: Its audit events (their chain checked separately).
        answers: Its answer rows, in the order given.
        decisions: Its decision rows, in the order decided.

    Returns:
        One line per difference; empty when the rows are what the events say.
    """
    events = sorted(entries, key=lambda e: e.seq)
    if not events or events[0].kind != "screening_started":
        return ["audit event 1: not the screening's start"]
    if events[0].payload.get("digest") != screening.protocol_digest:
        return ["screening: protocol_digest differs from the one its start recorded"]
    state = start(protocol)
    status = "in_progress"
    rows: list[_Row] = []
    expected_decisions: list[tuple[str, bool, str, int | None, bool]] = []
    closing: AuditEntry | None = None
    i = 1
    while i < len(events):
        entry = events[i]
        if entry.kind.startswith("screening_"):
            closing = entry
            if i != len(events) - 1:
                return [f"audit event {entry.seq} ({entry.kind}): events follow the closing"]
            break
        event = _cause(entry)
        if event is None:
            return [f"audit event {entry.seq} ({entry.kind}): does not start a step"]
        reason = entry.payload.get("reason")
        result = step(protocol, state, event)
        if result.rejected is not None:
            return [f"audit event {entry.seq} ({entry.kind}): the engine refuses this step"]
        expected = step_events(event, result, entry.payload.get("raw"), reason)
        stored = events[i : i + len(expected)]
        for (kind, payload), got in zip(expected, stored, strict=False):
            if (kind, payload) != (got.kind, got.payload) or got.actor != entry.actor:
                return [f"audit event {got.seq} ({got.kind}): not what the engine records here"]
        if len(stored) < len(expected):
            return [f"audit event {entry.seq}: its step's events are incomplete"]
        for change in result.changes:
            match change:
                case AnswerRecorded() | AnswerRetired():
                    for row in rows:
                        if row.question_id == change.question_id and row.status == "active":
                            row.status = (
                                "superseded" if isinstance(change, AnswerRecorded) else "retired"
                            )
                            row.change_reason = reason
                    if isinstance(change, AnswerRecorded):
                        rows.append(
                            _Row(
                                change.question_id,
                                entry.payload.get("raw"),
                                value_to_json(change.value),
                                entry.actor,
                            )
                        )
                case DecisionRecorded(decision=d):
                    decided = (d.criterion_id, d.approve, d.reason, entry.actor, False)
                    expected_decisions.append(decided)
                case DecisionWithdrawn(decision=d):
                    expected_decisions = [
                        (c, a, r, by, w or c == d.criterion_id)
                        for c, a, r, by, w in expected_decisions
                    ]
        state, status = result.state, result.verdict.status.value
        i += len(expected)
    return _compare(screening, state, status, closing, rows, answers, expected_decisions, decisions)


def _compare(
    screening: Screening,
    state: ScreeningState,
    status: str,
    closing: AuditEntry | None,
    rows: list[_Row],
    answers: Sequence[AnswerEntry],
    expected_decisions: list[tuple[str, bool, str, int | None, bool]],
    decisions: Sequence[DecisionEntry],
) -> list[str]:
    problems = _same_state(screening.state, state)
    kind = None
    if closing is not None:
        kind = closing.kind.removeprefix("screening_")
        status = str(closing.payload.get("status"))
        closed = (kind, closing.payload.get("reason"), closing.actor)
        stored = (screening.close_kind, screening.close_reason, screening.closed_by)
        if closed != stored:
            problems.append(f"screening: closed as {stored}, the events say {closed}")
    elif screening.close_kind is not None:
        problems.append("screening: closed, but no event records its closing")
    if screening.status != status:
        problems.append(f"screening: status is {screening.status!r}, the events give {status!r}")
    if len(answers) != len(rows):
        problems.append(f"answers: {len(answers)} stored, the events record {len(rows)}")
    fields = ("question_id", "raw_text", "given_by", "status", "change_reason")
    for n, (got, want) in enumerate(zip(answers, rows, strict=False), start=1):
        for name in fields:
            if getattr(got, name) != getattr(want, name):
                problems.append(
                    f"answer {n} ({want.question_id}): {name} is {getattr(got, name)!r}, "
                    f"the events say {getattr(want, name)!r}"
                )
        if value_to_json(got.value) != want.value:
            problems.append(f"answer {n} ({want.question_id}): value differs from the events")
    got_decisions = [
        (d.criterion_id, d.approve, d.reason, d.decided_by, d.withdrawn) for d in decisions
    ]
    if got_decisions != expected_decisions:
        problems.append(f"decisions: {got_decisions!r}, the events give {expected_decisions!r}")
    return problems


def verify(repo: Repository, screening: Screening, protocol: Protocol) -> list[str]:
    """Check a screening's audit chain, then that its stored rows are what the events say.

    Returns:
        The problems found, each naming its event, row or field; empty when all verifies.
    """
    entries = repo.audit_events(screening.code)
    chain = verify_entries(screening.code, entries)
    if not chain.ok:
        return [f"audit chain broken at event {chain.broken_at}: {chain.problem}"]
    return check(
        protocol, screening, entries, repo.answers(screening.id), repo.decisions(screening.id)
    )
