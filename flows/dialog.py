"""The dialog: a pure step function over a screening's state, checked by a shared FSM.

:func:`step` computes, from the protocol, the screening's state and an event, the next state
and what changed. It never does I/O. The legal moves between questions and outcomes are a
``transitions`` machine built once per protocol version and shared by every screening (one
machine, many models); each step drives it, so a move the dialog's graph does not allow is a
programming error that surfaces at once instead of a silently corrupted screening.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from transitions import Machine

from flows.messages import Message, msg
from flows.rules import truth
from flows.schema import Protocol, Question
from flows.values import UNKNOWN, AnswerValue, Unknown
from flows.verdict import CriterionVerdict, Decision, Status, Verdict, assess

EXCLUDED: Final = "excluded"
NEEDS_REVIEW: Final = "needs_review"
PENDING: Final = "pending"
ELIGIBLE: Final = "eligible"
TERMINALS: Final = (EXCLUDED, NEEDS_REVIEW, PENDING, ELIGIBLE)
_TERMINAL_OF = {
    Status.INELIGIBLE: EXCLUDED,
    Status.NEEDS_REVIEW: NEEDS_REVIEW,
    Status.PENDING: PENDING,
    Status.ELIGIBLE: ELIGIBLE,
}

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


# --- the machine ------------------------------------------------------------------------------


class IllegalMove(RuntimeError):
    """The engine computed a move the dialog graph does not allow (a bug, not bad input)."""


class _Cursor:
    """The model the shared machine moves: loaded with one screening's state per move."""

    state: str


class DialogMachine:
    """The protocol's dialog graph: one state per question plus the outcome states.

    Triggers: ``advance`` (to a later question or an outcome), ``revise`` (back to any question),
    ``resume`` (from pending to a question answered "unknown") and ``decide`` (from needs review
    to an outcome).
    """

    def __init__(self, protocol: Protocol) -> None:
        ids = [q.id for q in protocol.questions]
        self.states: tuple[str, ...] = (*ids, *TERMINALS)
        self._lock = threading.Lock()
        self._cursor = _Cursor()
        self._triggers: set[tuple[str, str]] = set()
        self._machine = Machine(
            model=self._cursor,
            states=list(self.states),
            initial=ids[0],
            auto_transitions=False,
        )
        # One machine trigger per kind of move and destination, from every source that may
        # reach it: a move then fires the one transition its source has, instead of trying
        # each destination's condition in turn (which cost more than judging the answers).
        for i, dest in enumerate(ids):
            if i:
                self._add("advance", ids[:i], dest)
            self._add("revise", list(self.states), dest)
            self._add("resume", [PENDING, NEEDS_REVIEW], dest)
        for dest in TERMINALS:
            self._add("advance", ids, dest)
        for dest in (EXCLUDED, NEEDS_REVIEW, PENDING, ELIGIBLE):
            self._add("decide", [NEEDS_REVIEW], dest)

    def _add(self, trigger: str, sources: list[str], dest: str) -> None:
        # transitions types its sources as states or names; these are names.
        named: list[Any] = sources
        self._machine.add_transition(f"{trigger}>{dest}", named, dest)
        self._triggers.add((trigger, dest))

    def move(self, source: str, trigger: str, dest: str) -> str:
        """Drive one screening's cursor from ``source`` to ``dest`` by ``trigger``.

        Raises:
            IllegalMove: The graph has no such edge.
        """
        if (trigger, dest) not in self._triggers:
            raise IllegalMove(f"{trigger}: no edge to {dest}")
        # Screenings are many and short-lived; rather than registering each as a model (which
        # installs helper methods per state), one cursor is loaded with the screening's state.
        with self._lock:
            cursor = self._cursor
            self._machine.set_state(source, model=cursor)
            try:
                fired = cursor.trigger(f"{trigger}>{dest}")  # type: ignore[attr-defined]
            except Exception as exc:  # transitions raises MachineError for an invalid source
                raise IllegalMove(f"{trigger}: {source} → {dest}: {exc}") from exc
            reached = cursor.state
        if not fired or reached != dest:
            raise IllegalMove(f"{trigger}: no edge {source} → {dest}")
        return dest


_MACHINES: dict[str, DialogMachine] = {}


def dialog_machine(protocol: Protocol) -> DialogMachine:
    """The shared machine of a protocol version (built once, cached by content hash)."""
    machine = _MACHINES.get(protocol.digest)
    if machine is None:
        machine = _MACHINES.setdefault(protocol.digest, DialogMachine(protocol))
    return machine


# --- pure helpers -----------------------------------------------------------------------------


def is_relevant(question: Question, answers: Mapping[str, AnswerValue]) -> bool:
    """Whether a question is to be asked; unknown relevance errs on asking."""
    return truth(question.relevant_if, answers) is not False


def relevant_questions(protocol: Protocol, answers: Mapping[str, AnswerValue]) -> list[Question]:
    """The questions to ask given the answers so far, in order."""
    # ``is_relevant`` inlined: this runs several times per answer, mostly on unconditional ones.
    return [
        q
        for q in protocol.questions
        if q.relevant_if is None or q.relevant_if.decide(answers) is not False
    ]


def progress(protocol: Protocol, state: ScreeningState) -> tuple[int, int]:
    """``(position, total)`` of the current question among the relevant ones ("7 of 24")."""
    relevant = [q.id for q in relevant_questions(protocol, state.answers)]
    if state.at in relevant:
        return relevant.index(state.at) + 1, len(relevant)
    return len(relevant), len(relevant)


def missing_for(
    protocol: Protocol, answers: Mapping[str, AnswerValue], criterion: CriterionVerdict
) -> list[str]:
    """The questions still to be answered for this patient before ``criterion`` is decided.

    Only questions skip logic asks this patient count: a question asked of men is not missing
    for a woman, though the criterion's rule reads it.
    """
    needed = {check.question_id for check in criterion.against}
    return [
        q.id
        for q in relevant_questions(protocol, answers)
        if q.id in needed and isinstance(answers.get(q.id, UNKNOWN), Unknown)
    ]


def missing(protocol: Protocol, answers: Mapping[str, AnswerValue], verdict: Verdict) -> list[str]:
    """Every question still to be answered before the undecided criteria are, in asking order.

    "Missing:" lists them, and "Results arrived" asks them again: exactly these.
    """
    needed = {q for cv in verdict.unknown for q in missing_for(protocol, answers, cv)}
    return [q for q in protocol.question_index if q in needed]


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


def _next_stop(
    protocol: Protocol,
    answers: Mapping[str, AnswerValue],
    decisions: Mapping[str, Decision],
    after: int,
    revisiting: bool,
) -> tuple[str, Verdict]:
    """Where the dialog goes next (exclusion first, then the first unasked question)."""
    verdict = assess(protocol, answers, decisions, complete=False)
    if verdict.status is Status.INELIGIBLE:
        return EXCLUDED, verdict
    relevant = relevant_questions(protocol, answers)
    for question in relevant:
        if question.id not in answers:
            return question.id, verdict
    if revisiting:
        for qid in missing(protocol, answers, verdict):
            if protocol.question_index[qid] > after:
                return qid, verdict
    final = assess(protocol, answers, decisions, complete=True)
    return _TERMINAL_OF[final.status], final


def start(protocol: Protocol) -> ScreeningState:
    """The state of a new screening: at the first question."""
    first, _ = _next_stop(protocol, {}, {}, -1, revisiting=False)
    return ScreeningState(at=first)


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
    index = protocol.question_index[event.question_id]
    dest, verdict = _next_stop(protocol, answers, decisions, index, state.revisiting)
    dialog_machine(protocol).move(state.at, "advance", dest)
    new = ScreeningState(
        dest,
        MappingProxyType(answers),
        MappingProxyType(retired),
        MappingProxyType(decisions),
        state.revisiting and dest not in TERMINALS,
    )
    return Step(new, verdict, tuple(changes))


def _go_back(protocol: Protocol, state: ScreeningState, event: GoBack) -> Step:
    question = protocol.questions_by_id.get(event.question_id)
    if question is None or (
        event.question_id not in state.answers and event.question_id != state.at
    ):
        label = question.label.en if question is not None else event.question_id
        return _reject(protocol, state, msg("cannot_go_back", question=label))
    dialog_machine(protocol).move(state.at, "revise", question.id)
    new = ScreeningState(question.id, state.answers, state.retired, state.decisions, False)
    return Step(new, _verdict(protocol, new))


def _complete_pending(protocol: Protocol, state: ScreeningState) -> Step:
    unknown = missing(protocol, state.answers, _verdict(protocol, state))
    # Results may arrive while the investigator has yet to decide on another criterion.
    if state.at not in (PENDING, NEEDS_REVIEW) or not unknown:
        return _reject(protocol, state, msg("no_pending"))
    dialog_machine(protocol).move(state.at, "resume", unknown[0])
    new = ScreeningState(unknown[0], state.answers, state.retired, state.decisions, True)
    return Step(new, _verdict(protocol, new))


def _decide(protocol: Protocol, state: ScreeningState, event: Decide) -> Step:
    cid = event.decision.criterion_id
    verdict = _verdict(protocol, state)
    awaiting = {cv.criterion_id for cv in verdict.awaiting_review}
    if state.at != NEEDS_REVIEW or cid not in awaiting:
        criterion = protocol.criteria_by_id.get(cid)
        number = criterion.number if criterion is not None else cid
        return _reject(protocol, state, msg("not_reviewable", criterion=number))
    decisions = {**state.decisions, cid: event.decision}
    dest = _TERMINAL_OF[assess(protocol, state.answers, decisions, complete=True).status]
    dialog_machine(protocol).move(state.at, "decide", dest)
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


def verdict_of(protocol: Protocol, state: ScreeningState) -> Verdict:
    """The verdict of a state (after every step it is also returned in :class:`Step`)."""
    return _verdict(protocol, state)
