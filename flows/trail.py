"""The audit events a dialog step records: what happened, in the words of the record.

Both repositories store these, and ``reports.replay`` derives them again from the answers to
check a stored screening, so they are computed in one place.
"""

from __future__ import annotations

from typing import Any

from flows.dialog import (
    AnswerRecorded,
    AnswerRetired,
    CompletePending,
    Decide,
    DecisionRecorded,
    DecisionWithdrawn,
    Event,
    GoBack,
    Step,
)
from flows.showing import format_actual
from flows.values import value_to_json


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


__all__ = ["step_events"]
