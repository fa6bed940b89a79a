"""The dialog: one event applied to a screening's state, by the protocol's state machine.

:func:`step` takes the protocol, the screening's state and an event, and returns the next
state and what changed. It records the event's facts (the answer, the decision) and lets the
``transitions`` machine of :mod:`flows.machine` choose where the screening goes next. It
never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flows.asking import is_relevant, missing, missing_for, relevant_questions
from flows.machine import (
    ELIGIBLE,
    EXCLUDED,
    NEEDS_REVIEW,
    PENDING,
    TERMINALS,
    Screening,
    run,
)
from flows.messages import Message, msg
from flows.schema import Protocol, Question
from flows.values import AnswerValue, Unknown
from flows.verdict import Decision, Verdict, assess

# Re-exported: where a screening stands and what is still to ask are read with the dialog.
__all__ = [
    "ELIGIBLE",
    "EXCLUDED",
    "NEEDS_REVIEW",
    "PENDING",
    "TERMINALS",
    "is_relevant",
    "missing",
    "missing_for",
    "relevant_questions",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ScreeningState:
    """Where a screening stands: everything the dialog needs, nothing else.

    Attributes:
        at: The current question id, or a terminal state.
        answers: Current answers by question id.
        retired: Answers to questions that became irrelevant after a correction (kept).
        decisions: Investigator decisions by criterion id.
        revisiting: Completing pending answers: unknown answers after the current
            question are asked again.
    """

    at: str
    answers: Mapping[str, AnswerValue] = field(default_factory=lambda: _EMPTY)
    retired: Mapping[str, AnswerValue] = field(default_factory=lambda: _EMPTY)
    decisions: Mapping[str, Decision] = field(default_factory=lambda: _EMPTY)
    revisiting: bool = False

    @property
    def finished(self) -> bool:
        """Whether the dialog stands in an outcome rather than at a question."""
        return self.at in TERMINALS


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to the current question."""

    question_id: str
    value: AnswerValue


@dataclass(frozen=True, slots=True)
class GoBack:
    """Return to an earlier question to change its answer."""

    question_id: str


@dataclass(frozen=True, slots=True)
class CompletePending:
    """Ask again the questions answered "unknown" (results have arrived)."""


@dataclass(frozen=True, slots=True)
class Decide:
    """An investigator's decision on an overridable criterion."""

    decision: Decision


Event = Answer | GoBack | CompletePending | Decide


# --- changes (what storage records) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerRecorded:
    """An answer was given; ``previous`` is the value it supersedes, if any."""

    question_id: str
    value: AnswerValue
    previous: AnswerValue | None


@dataclass(frozen=True, slots=True)
class AnswerRetired:
    """A question became irrelevant; its answer is kept but no longer counts."""

    question_id: str
    value: AnswerValue


@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    """An investigator decided on a criterion."""

    decision: Decision


@dataclass(frozen=True, slots=True)
class DecisionWithdrawn:
    """A correction changed an answer the decision was based on; the decision lapses."""

    decision: Decision


Change = AnswerRecorded | AnswerRetired | DecisionRecorded | DecisionWithdrawn


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one event.

    Attributes:
        state: The new state (the old one when rejected).
        verdict: The verdict after the event.
        changes: What to record, in order.
        rejected: Why the event was not applied, or ``None``.
    """

    state: ScreeningState
    verdict: Verdict
    changes: tuple[Change, ...] = ()
    rejected: Message | None = None


# --- pure helpers -----------------------------------------------------------------------------


def progress(protocol: Protocol, state: ScreeningState) -> tuple[int, int]:
    """``(position, total)`` of the current question among the relevant ones ("7 of 24")."""
    relevant = [q.id for q in relevant_questions(protocol, state.answers)]
    if state.at in relevant:
        return relevant.index(state.at) + 1, len(relevant)
    return len(relevant), len(relevant)


def previous_question(protocol: Protocol, state: ScreeningState) -> str | None:
    """The last answered question before the current position ("◀ Back" goes there)."""
    before = protocol.question_index.get(state.at, len(protocol.questions))
    answered = [
        q.id
        for q in relevant_questions(protocol, state.answers)
        if q.id in state.answers and protocol.question_index[q.id] < before
    ]
    return answered[-1] if answered else None


def current_question(protocol: Protocol, state: ScreeningState) -> Question | None:
    """The question to ask now, or ``None`` when the dialog stands in an outcome."""
    return protocol.questions_by_id.get(state.at)


def _retire_irrelevant(
    protocol: Protocol,
    answers: dict[str, AnswerValue],
    retired: dict[str, AnswerValue],
) -> list[Change]:
    """Move answers of questions that are no longer relevant out of ``answers``.

    Relevance only reads earlier questions, so one pass in order sees every cascade.
    """
    changes: list[Change] = []
    for question in protocol.questions:
        # Most questions are asked unconditionally: those are never retired.
        if (
            question.relevant_if is not None
            and question.id in answers
            and not is_relevant(question, answers)
        ):
            value = answers.pop(question.id)
            retired[question.id] = value
            changes.append(AnswerRetired(question.id, value))
    return changes


def _verdict(protocol: Protocol, state: ScreeningState) -> Verdict:
    complete = state.finished and state.at != EXCLUDED
    return assess(protocol, state.answers, state.decisions, complete=complete)


def start(protocol: Protocol) -> ScreeningState:
    """The state of a new screening: at the first question skip logic asks."""
    first = protocol.questions[0].id
    moved = run(protocol, Screening(protocol, _EMPTY, _EMPTY), first, "next")
    return ScreeningState(at=moved or first)


def _reject(protocol: Protocol, state: ScreeningState, message: Message) -> Step:
    return Step(state, _verdict(protocol, state), (), message)


def _answer(protocol: Protocol, state: ScreeningState, event: Answer) -> Step:
    if state.at != event.question_id:
        if state.finished:
            return _reject(protocol, state, msg("not_answerable"))
        current = protocol.questions_by_id[state.at].label.en
        return _reject(protocol, state, msg("not_current", current=current))
    answers = dict(state.answers)
    retired = dict(state.retired)
    decisions = dict(state.decisions)
    previous = answers.get(event.question_id)
    answers[event.question_id] = event.value
    retired.pop(event.question_id, None)
    changes: list[Change] = [AnswerRecorded(event.question_id, event.value, previous)]
    if previous is not None and previous != event.value:
        # A decision was taken on the old answers; it does not carry over to new ones.
        for cid in protocol.criteria_of_question.get(event.question_id, ()):
            if cid in decisions:
                changes.append(DecisionWithdrawn(decisions.pop(cid)))
    changes += _retire_irrelevant(protocol, answers, retired)
    model = Screening(
        protocol,
        answers,
        decisions,
        revisiting=state.revisiting,
        answered_now=event.question_id,
    )
    dest = run(protocol, model, state.at, "next")
    if dest is None:
        raise AssertionError(f"the machine has no move after answering {state.at}")
    verdict = model.provisional if dest not in TERMINALS or dest == EXCLUDED else model.final
    new = ScreeningState(
        dest,
        MappingProxyType(answers),
        MappingProxyType(retired),
        MappingProxyType(decisions),
        state.revisiting and dest not in TERMINALS,
    )
    return Step(new, verdict, tuple(changes))


def _go_back(protocol: Protocol, state: ScreeningState, event: GoBack) -> Step:
    model = Screening(protocol, state.answers, state.decisions, target=event.question_id)
    dest = run(protocol, model, state.at, "correct")
    if dest is None:
        question = protocol.questions_by_id.get(event.question_id)
        label = question.label.en if question is not None else event.question_id
        return _reject(protocol, state, msg("cannot_go_back", question=label))
    new = ScreeningState(dest, state.answers, state.retired, state.decisions, False)
    return Step(new, _verdict(protocol, new))


def _complete_pending(protocol: Protocol, state: ScreeningState) -> Step:
    # Results may arrive while the investigator has yet to decide on another criterion.
    model = Screening(protocol, state.answers, state.decisions, revisiting=True)
    dest = run(protocol, model, state.at, "results_arrived")
    if dest is None:
        return _reject(protocol, state, msg("no_pending"))
    new = ScreeningState(dest, state.answers, state.retired, state.decisions, True)
    return Step(new, _verdict(protocol, new))


def _decide(protocol: Protocol, state: ScreeningState, event: Decide) -> Step:
    cid = event.decision.criterion_id
    decisions = {**state.decisions, cid: event.decision}
    model = Screening(protocol, state.answers, decisions, reviewing=cid)
    dest = run(protocol, model, state.at, "decide")
    if dest is None:
        criterion = protocol.criteria_by_id.get(cid)
        number = criterion.number if criterion is not None else cid
        return _reject(protocol, state, msg("not_reviewable", criterion=number))
    new = ScreeningState(dest, state.answers, state.retired, MappingProxyType(decisions))
    return Step(new, _verdict(protocol, new), (DecisionRecorded(event.decision),))


def step(protocol: Protocol, state: ScreeningState, event: Event) -> Step:
    """Apply one event to a screening.

    Args:
        protocol: The protocol version the screening runs on.
        state: The screening's current state.
        event: What the coordinator or investigator did.

    Returns:
        The new state, the verdict, what changed, or why the event was rejected.
    """
    match event:
        case Answer():
            return _answer(protocol, state, event)
        case GoBack():
            return _go_back(protocol, state, event)
        case CompletePending():
            return _complete_pending(protocol, state)
        case Decide():
            return _decide(protocol, state, event)
    raise TypeError(f"not an event: {event!r}")


def replaced_answer(
    state: ScreeningState, question_id: str, value: AnswerValue
) -> AnswerValue | None:
    """The earlier answer a new value would replace, when that change needs a reason.

    Completing an answer that was "unknown" is not a change of data; replacing a known value
    with a different one is, and good clinical practice asks why.
    """
    previous = state.answers.get(question_id)
    if previous is None or isinstance(previous, Unknown) or previous == value:
        return None
    return previous


def verdict_of(protocol: Protocol, state: ScreeningState) -> Verdict:
    """The verdict of a state (after every step it is also returned in :class:`Step`)."""
    return _verdict(protocol, state)
