"""The audit trail: events derived from dialog steps, chained with SHA-256.

Both repositories build their events here so that the SQL store, the in-memory fake and the
JSON export hash exactly the same canonical encoding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from flows import (
    AnswerRecorded,
    AnswerRetired,
    CompletePending,
    Decide,
    DecisionRecorded,
    DecisionWithdrawn,
    GoBack,
    Step,
)
from flows.dialog import Event
from flows.showing import format_actual
from flows.values import value_to_json
from storage.records import AuditEntry

GENESIS = "0" * 64


def step_events(
    event: Event, result: Step, raw_text: str | None, reason: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """The audit events of one step, each ``(kind, payload)``; the last carries the outcome."""
    events: list[tuple[str, dict[str, Any]]] = []
    if isinstance(event, GoBack):
        events.append(("went_back", {"question": event.question_id}))
    elif isinstance(event, CompletePending):
        events.append(("completing_pending", {}))
    for change in result.changes:
        match change:
            case AnswerRecorded():
                payload: dict[str, Any] = {
                    "question": change.question_id,
                    "raw": raw_text,
                    "value": value_to_json(change.value),
                    "normalised": format_actual(change.value),
                }
                if change.previous is not None:
                    payload["previous"] = value_to_json(change.previous)
                    payload["previous_normalised"] = format_actual(change.previous)
                    payload["reason"] = reason
                events.append(
                    (
                        "answer_corrected" if change.previous is not None else "answer_recorded",
                        payload,
                    )
                )
            case AnswerRetired():
                events.append(
                    (
                        "answer_retired",
                        {"question": change.question_id, "value": value_to_json(change.value)},
                    )
                )
            case DecisionRecorded():
                d = change.decision
                events.append(
                    (
                        "decision_recorded",
                        {"criterion": d.criterion_id, "approve": d.approve, "reason": d.reason},
                    )
                )
            case DecisionWithdrawn():
                d = change.decision
                events.append(
                    (
                        "decision_withdrawn",
                        {"criterion": d.criterion_id, "approve": d.approve, "reason": d.reason},
                    )
                )
    if isinstance(event, Decide) and not result.changes:
        events.append(("decision_refused", {"criterion": event.decision.criterion_id}))
    if not events:
        events.append(("state_changed", {}))
    outcome = {
        "at": result.state.at,
        "status": result.verdict.status.value,
        "excluded_by": [cv.criterion_id for cv in result.verdict.excluded_by],
    }
    events[-1] = (events[-1][0], {**events[-1][1], "outcome": outcome})
    return events


def canonical(
    code: str, seq: int, kind: str, payload: dict[str, Any], actor: int | None, at: datetime
) -> str:
    """The exact text that is hashed for one event.

    It is ``json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    written by orjson, which gives the same text for what events hold (strings, integers,
    booleans, nulls, lists and objects with string keys; tested) in a fifth of the time: an
    export checks every event of every screening. What orjson refuses (an integer beyond 64
    bits, a key that is not a string) goes to the standard library's encoder. Events hold no
    floating-point numbers (decimals are written as strings), where the two would differ.
    """
    event = {
        "screening": code,
        "seq": seq,
        "kind": kind,
        "payload": payload,
        "actor": actor,
        "at": at.astimezone(UTC).isoformat(),
    }
    try:
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _CANONICAL.encode(event)


# What json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) uses, made once:
# json.dumps makes a new encoder at every call with options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, text: str) -> str:
    """SHA-256 over the previous hash and the event's canonical encoding."""
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking a screening's chain."""

    code: str
    checked: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None
    head: str = GENESIS


@dataclass(frozen=True, slots=True)
class ChainLink:
    """The fields of an event the chain covers (from the database or an export)."""

    seq: int
    kind: str
    payload: dict[str, Any]
    actor: int | None
    at: datetime
    prev_hash: str
    hash: str


def verify_chain(code: str, links: Sequence[ChainLink | AuditEntry]) -> ChainReport:
    """Recompute a screening's chain and report the first broken link.

    An edited event no longer matches its hash; a deleted one leaves a gap in the sequence and a
    successor whose ``prev_hash`` does not match; an inserted one breaks the sequence or the
    link to its predecessor. ``links`` are an export's links or a repository's entries.
    """
    prev = GENESIS
    for expected_seq, link in enumerate(sorted(links, key=lambda x: x.seq), start=1):
        if link.seq != expected_seq:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                expected_seq,
                f"event {expected_seq} is missing (found {link.seq})",
                prev,
            )
        if link.prev_hash != prev:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                link.seq,
                f"event {link.seq} does not follow event {link.seq - 1}",
                prev,
            )
        text = canonical(code, link.seq, link.kind, link.payload, link.actor, link.at)
        if chain_hash(prev, text) != link.hash:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                link.seq,
                f"event {link.seq} ({link.kind}) was altered",
                prev,
            )
        prev = link.hash
    return ChainReport(code, len(links), True, head=prev)


def verify_entries(code: str, entries: Sequence[AuditEntry]) -> ChainReport:
    """Verify a screening's chain as read from a repository."""
    # The entries carry every field the chain covers: checked as they are, without copying
    # each into a ChainLink (a frozen dataclass, slow to build), which cost an export 5 %.
    return verify_chain(code, entries)


def next_link(
    code: str,
    prev_hash: str,
    seq: int,
    kind: str,
    payload: dict[str, Any],
    actor: int | None,
    at: datetime,
) -> ChainLink:
    """Build the next event of a chain."""
    text = canonical(code, seq, kind, payload, actor, at)
    return ChainLink(seq, kind, payload, actor, at, prev_hash, chain_hash(prev_hash, text))
