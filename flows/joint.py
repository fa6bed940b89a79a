"""One pass over several trials: shared questions asked once, each trial decided on its own.

Each trial keeps its own dialog (:mod:`flows.dialog`): its questions in its order, its skip
logic, its early stop. The pass keeps one pool of answers, keyed by a question's ``concept``
when it has one (asked once for every trial that reads it) and by trial and question otherwise
(a trial's own consent stays its own). A trial takes an answer from the pool when its own
dialog reaches that question, exactly as if the coordinator had typed it there; so each trial's
outcome, early stop and answers are the ones it would have alone. The pass asks next the
question the first undecided trial is at, and so never asks what no open trial needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.dialog import Answer, ScreeningState, Step, start, step, verdict_of
from flows.schema import ChoiceQuestion, LabQuestion, NumberQuestion, Protocol, Question
from flows.values import AnswerValue
from flows.verdict import Verdict


def key_of(protocol: Protocol, question: Question) -> str:
    """The pool's key for a question: its concept, else the trial's own question."""
    if question.concept is not None:
        return f"concept:{question.concept}"
    return f"{protocol.id}:{question.id}"


def shape(question: Question) -> tuple[Any, ...]:
    """What an answer to the question means: its kind, and its unit, ULN or options.

    Questions sharing a concept must agree on it, so that one answer cannot mean two things.
    """
    match question:
        case NumberQuestion():
            return ("number", question.unit)
        case LabQuestion():
            return ("lab", question.analyte, question.uln)
        case ChoiceQuestion():
            return ("choice", tuple(o.id for o in question.options))
    return (question.kind,)


def concept_conflicts(protocols: Sequence[Protocol]) -> list[str]:
    """Concepts that two questions use with different meanings, one line each."""
    seen: dict[str, tuple[str, tuple[Any, ...]]] = {}
    problems: list[str] = []
    for protocol in protocols:
        for question in protocol.questions:
            if question.concept is None:
                continue
            where = f"{protocol.id} question {question.id}"
            first = seen.setdefault(question.concept, (where, shape(question)))
            if first[1] != shape(question):
                problems.append(
                    f"concept {question.concept}: {first[0]} is {_said(first[1])}, "
                    f"but {where} is {_said(shape(question))}"
                )
    return problems


def _said(meaning: tuple[Any, ...]) -> str:
    match meaning:
        case ("number", unit):
            return f"a number in {unit}"
        case ("lab", analyte, uln):
            return f"lab {analyte} {'with' if uln else 'without'} ULN"
        case ("choice", options):
            return f"a choice of {', '.join(options)}"
    return str(meaning[0]).replace("_", "/")


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial in a pass: where its own dialog stands and the steps that took it there.

    Attributes:
        protocol: The trial's protocol version.
        state: Its dialog's state after taking every answer it could from the pool.
        verdict: Its verdict in that state.
        steps: The answers it took from the pool, in its own order, each with its step.
    """

    protocol: Protocol
    state: ScreeningState
    verdict: Verdict
    steps: tuple[tuple[Answer, Step], ...] = ()

    @property
    def decided(self) -> bool:
        """Whether its dialog stands in an outcome (eligible, excluded, pending, review)."""
        return self.state.finished

    @property
    def asks(self) -> Question | None:
        """The question this trial needs next, if it is still open."""
        return self.protocol.questions_by_id.get(self.state.at)


def take(protocol: Protocol, state: ScreeningState, pool: Mapping[str, AnswerValue]) -> Trial:
    """Move one trial's dialog on as far as the pool answers its questions.

    Args:
        protocol: The trial's protocol version.
        state: Where its dialog stands now.
        pool: The pass's answers by :func:`key_of`.

    Returns:
        The trial, at the first question the pool does not answer (or that it answered
        already) or in an outcome.
    """
    steps: list[tuple[Answer, Step]] = []
    while (question := protocol.questions_by_id.get(state.at)) is not None:
        key = key_of(protocol, question)
        # A question answered already is being corrected, or asked again now that results
        # have arrived: the coordinator answers it, not the pool.
        if key not in pool or question.id in state.answers:
            break
        event = Answer(question.id, pool[key])
        result = step(protocol, state, event)
        if result.rejected is not None:  # the dialog refused it: ask the trial's own question
            break
        steps.append((event, result))
        state = result.state
    return Trial(protocol, state, verdict_of(protocol, state), tuple(steps))


@dataclass(frozen=True, slots=True)
class Pass:
    """Several trials screened together from one pool of answers."""

    trials: tuple[Trial, ...]

    @property
    def asking(self) -> tuple[Trial, Question] | None:
        """The question to ask now: the one the first undecided trial is at."""
        for trial in self.trials:
            if (question := trial.asks) is not None:
                return trial, question
        return None

    @property
    def finished(self) -> bool:
        """Whether every trial is decided."""
        return self.asking is None


def screen_together(protocols: Sequence[Protocol], pool: Mapping[str, AnswerValue]) -> Pass:
    """Every trial from its start, each taking what the pool answers (see :func:`take`)."""
    return Pass(tuple(take(p, start(p), pool) for p in protocols))


def answer(
    current: Pass, value: AnswerValue, pool: Mapping[str, AnswerValue]
) -> tuple[Pass, dict[str, AnswerValue]]:
    """Answer the question the pass is asking and move every open trial on.

    Returns:
        The pass after the answer, and the pool with it.

    Raises:
        ValueError: The pass is finished: nothing is being asked.
    """
    asking = current.asking
    if asking is None:
        raise ValueError("every trial is decided")
    trial, question = asking
    grown = {**pool, key_of(trial.protocol, question): value}
    return (
        Pass(tuple(t if t.decided else take(t.protocol, t.state, grown) for t in current.trials)),
        grown,
    )


__all__ = [
    "Pass",
    "Trial",
    "answer",
    "concept_conflicts",
    "key_of",
    "screen_together",
    "shape",
    "take",
]
