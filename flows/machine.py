"""The dialog as a ``transitions`` state machine: one per protocol version, built from its YAML.

States are the protocol's questions, the outcomes (excluded, needs review, pending, eligible)
and ``correcting``, the moment a coordinator has asked to change an earlier answer. The rules
travel on the transitions as ``conditions`` and ``unless`` callbacks of the model, so the
machine itself picks where a screening goes:

- ``next`` leaves a question for ``excluded`` when a criterion is not met (``excludes``); for the
  following question once this one is answered (``answered``), or without an answer when skip
  logic does not ask it (``unless: asks_<question>``, the question's ``relevant_if``). Arriving
  at a question fires ``next`` again, so answered and skipped questions are passed through and
  the screening rests at the first question it still has to ask. After the last question the
  outcome is chosen by ``awaiting_review``, ``results_pending`` or ``all_met``.
- ``correct`` goes from anywhere to ``correcting`` if the answer to change exists
  (``reopenable``), and ``reopen`` from there to that question (``reopens_<question>``).
- ``results_arrived`` goes from pending or needs review back through the questions, stopping
  at each answer that was "unknown" and still decides a criterion (``results_awaited``).
- ``decide`` goes from needs review to the outcome an investigator's decision gives.

Each screening is its own model (:class:`Screening`), restored from our database for one step:
it takes the machine's seat (one model per thread, added once), is triggered, and leaves it.
Nothing is shared between screenings but the graph.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Final

from transitions import Machine

from flows.asking import is_relevant, missing
from flows.schema import Protocol
from flows.values import AnswerValue
from flows.verdict import Decision, Status, Verdict, assess

EXCLUDED: Final = "excluded"
NEEDS_REVIEW: Final = "needs_review"
PENDING: Final = "pending"
ELIGIBLE: Final = "eligible"
TERMINALS: Final = (EXCLUDED, NEEDS_REVIEW, PENDING, ELIGIBLE)
CORRECTING: Final = "correcting"
CONFIRMING: Final = "confirming"
AWAITING_REASON: Final = "awaiting_reason"
CLOSED: Final = "closed"

# The ways of closing a screening, the trigger of each and where it may start.
CLOSING: Final = {
    "signed": "sign",
    "exclusion_confirmed": "confirm_exclusion",
    "cancelled": "cancel",
    "not_completed": "close_incomplete",
}

# The outcome after the last question, and the condition that chooses it.
_OUTCOMES: Final = (
    (NEEDS_REVIEW, "awaiting_review"),
    (PENDING, "results_pending"),
    (ELIGIBLE, "all_met"),
)


class Screening:
    """One screening as the machine's model: its answers, decisions and where it stands.

    The machine sets ``state``. The attributes below are the facts the conditions read; they
    do not change while the machine moves, so each verdict is computed once.

    Attributes:
        protocol: The protocol version the screening runs on.
        answers: Current answers by question id.
        decisions: Investigator decisions by criterion id.
        revisiting: Results have arrived: stop at answers still "unknown".
        answered_now: The question answered by this step, settled even if "unknown".
        target: The question a correction reopens.
        reviewing: The criterion an investigator decides on.
        unusual: The answer given is possible but unusual, and not confirmed yet.
        unexplained: The answer given replaces a known, different one, without a reason yet.
        reason: The reason given for closing, if any.
    """

    state: str

    def __init__(
        self,
        protocol: Protocol,
        answers: Mapping[str, AnswerValue],
        decisions: Mapping[str, Decision],
        *,
        revisiting: bool = False,
        answered_now: str | None = None,
        target: str | None = None,
        reviewing: str | None = None,
        unusual: bool = False,
        unexplained: bool = False,
        reason: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.answers = answers
        self.decisions = decisions
        self.revisiting = revisiting
        self.answered_now = answered_now
        self.target = target
        self.reviewing = reviewing
        self.unusual = unusual
        self.unexplained = unexplained
        self.reason = reason

    # --- the verdicts the conditions read -----------------------------------------------------

    @cached_property
    def provisional(self) -> Verdict:
        """The verdict while questions remain: ineligible as soon as a criterion excludes."""
        return assess(self.protocol, self.answers, self.decisions, complete=False)

    @cached_property
    def final(self) -> Verdict:
        """The verdict once every question to ask has been asked."""
        return assess(self.protocol, self.answers, self.decisions, complete=True)

    @cached_property
    def _awaited(self) -> frozenset[str]:
        return frozenset(missing(self.protocol, self.answers, self.provisional))

    # --- conditions ---------------------------------------------------------------------------

    def excludes(self) -> bool:
        """A criterion is not met: the dialog stops."""
        return self.provisional.status is Status.INELIGIBLE

    def answered(self) -> bool:
        """The current question has its answer (while results arrive: a known one)."""
        here = self.state
        if here == self.answered_now:
            return True
        return here in self.answers and not (self.revisiting and here in self._awaited)

    def awaiting_review(self) -> bool:
        """An overridable criterion is not met: an investigator decides."""
        return self.final.status is Status.NEEDS_REVIEW

    def results_pending(self) -> bool:
        """A criterion waits for a result answered "unknown"."""
        return self.final.status is Status.PENDING

    def all_met(self) -> bool:
        """Every criterion is met, or approved by an investigator."""
        return self.final.status is Status.ELIGIBLE

    def results_awaited(self) -> bool:
        """Some answer is "unknown" and still decides a criterion."""
        return bool(self._awaited)

    def reopenable(self) -> bool:
        """The answer to change exists (or it is the question being asked)."""
        return self.target in self.answers or self.target == self.state

    def reviewable(self) -> bool:
        """The criterion decided on is waiting for an investigator's decision."""
        before = {cid: d for cid, d in self.decisions.items() if cid != self.reviewing}
        verdict = assess(self.protocol, self.answers, before, complete=True)
        return any(cv.criterion_id == self.reviewing for cv in verdict.awaiting_review)

    def unconfirmed(self) -> bool:
        """The answer is unusual: the coordinator confirms it before it is recorded."""
        return self.unusual

    def needs_reason(self) -> bool:
        """The answer changes a known one: good clinical practice asks why, first."""
        return self.unexplained

    def has_reason(self) -> bool:
        """A reason is given (cancelling, or closing as not completed, needs one)."""
        return bool((self.reason or "").strip())

    def __getattr__(self, name: str) -> Callable[[], bool]:
        # The per-question conditions: ``asks_<id>`` (skip logic) and ``reopens_<id>``.
        kind, _, qid = name.partition("_")
        question = self.__dict__["protocol"].questions_by_id.get(qid) if qid else None
        if question is None or kind not in ("asks", "reopens"):
            raise AttributeError(name)
        if kind == "asks":
            return lambda: is_relevant(question, self.answers)
        return lambda: self.target == qid


def states(protocol: Protocol) -> list[str]:
    """The machine's states: the questions in order, the outcomes, ``closed``, and moments.

    The moments of the conversation: ``confirming`` an unusual value, ``awaiting_reason`` for a
    change, ``correcting`` (choosing the answer to change).
    """
    ids = [q.id for q in protocol.questions]
    return [*ids, *TERMINALS, CLOSED, CONFIRMING, AWAITING_REASON, CORRECTING]


def define(machine: Machine, protocol: Protocol) -> None:
    """Add the protocol's transitions to a machine of its :func:`states`.

    The running machine and the drawn one (:mod:`flows.diagram`) are both built by this
    function, so the diagram shows the transitions that run.
    """
    ids = [q.id for q in protocol.questions]
    for i, question in enumerate(protocol.questions):
        machine.add_transition("next", question.id, EXCLUDED, conditions="excludes")
        later: list[tuple[str, list[Any]]] = (
            [(ids[i + 1], [])] if i + 1 < len(ids) else [(o, [c]) for o, c in _OUTCOMES]
        )
        for dest, chooses in later:
            # Arriving at a question asks the machine to move on again, past answered ones.
            after = "next" if dest in ids else None
            machine.add_transition(
                "next", question.id, dest, conditions=["answered", *chooses], after=after
            )
            if question.relevant_if is not None:
                machine.add_transition(
                    "next",
                    question.id,
                    dest,
                    conditions=chooses,
                    unless=f"asks_{question.id}",
                    after=after,
                )
    machine.add_transition(
        "correct", [*ids, *TERMINALS], CORRECTING, conditions="reopenable", after="reopen"
    )
    for qid in ids:
        machine.add_transition("reopen", CORRECTING, qid, conditions=f"reopens_{qid}")
    machine.add_transition(
        "results_arrived",
        [PENDING, NEEDS_REVIEW],
        ids[0],
        conditions="results_awaited",
        after="next",
    )
    for dest, outcome in ((EXCLUDED, "excludes"), *_OUTCOMES):
        machine.add_transition("decide", NEEDS_REVIEW, dest, conditions=["reviewable", outcome])
    # An answer given waits here, before it is recorded, while it is unusual or unexplained.
    questions: list[Any] = ids
    machine.add_transition("give", questions, CONFIRMING, conditions="unconfirmed")
    machine.add_transition("give", questions, AWAITING_REASON, conditions="needs_reason")
    machine.add_transition(CLOSING["signed"], ELIGIBLE, CLOSED)
    machine.add_transition(CLOSING["exclusion_confirmed"], EXCLUDED, CLOSED)
    everywhere: list[Any] = [*ids, *TERMINALS]
    machine.add_transition(CLOSING["cancelled"], everywhere, CLOSED, conditions="has_reason")
    unfinished: list[Any] = [*ids, PENDING, NEEDS_REVIEW]
    machine.add_transition(CLOSING["not_completed"], unfinished, CLOSED, conditions="has_reason")


def _machine(protocol: Protocol) -> Machine:
    machine = Machine(
        model=None,
        states=states(protocol),
        initial=protocol.questions[0].id,
        auto_transitions=False,
        ignore_invalid_triggers=True,  # a trigger a state lacks is a refusal, not an error
    )
    define(machine, protocol)
    return machine


_MACHINES: dict[str, Machine] = {}


def machine_for(protocol: Protocol) -> Machine:
    """The machine of a protocol version, built once and kept by its content hash."""
    found = _MACHINES.get(protocol.digest)
    if found is None:
        found = _MACHINES.setdefault(protocol.digest, _machine(protocol))
    return found


class _Seat:
    """A machine's model, added to it once: a screening takes the seat for one step.

    ``add_model`` binds a method for every state and trigger to the model it adds, which cost
    more than the step itself when it was done for each step (a transcript's check replays
    every step). So each machine keeps one model per thread, and a screening sits on it while
    the machine moves: the conditions are looked up on the screening, and the state the
    machine sets is the screening's too. A step runs without awaiting, so no other screening
    can take the seat meanwhile.
    """

    def __init__(self) -> None:
        self.sitting: Screening | None = None
        self._state = ""

    @property
    def state(self) -> str:
        """Where the seated screening stands (set by the machine)."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        if self.sitting is not None:
            self.sitting.state = value

    def __getattr__(self, name: str) -> Any:
        # The conditions (``excludes``, ``asks_<id>``, …): the seated screening's.
        sitting = self.__dict__.get("sitting")
        if sitting is None:
            raise AttributeError(name)
        return getattr(sitting, name)


_SEATS = threading.local()


def _seat(protocol: Protocol, machine: Machine) -> _Seat:
    seats: dict[str, _Seat] = _SEATS.__dict__.setdefault("by_digest", {})
    seat = seats.get(protocol.digest)
    if seat is None:
        seat = seats[protocol.digest] = _Seat()
        machine.add_model(seat)
    return seat


def run(protocol: Protocol, model: Screening, at: str, trigger: str) -> str | None:
    """Seat one screening on the machine at ``at`` and fire ``trigger``.

    Returns:
        Where the screening stands afterwards, or ``None`` when no transition's conditions
        held (the move is refused and the screening stays where it was).
    """
    machine = machine_for(protocol)
    seat = _seat(protocol, machine)
    seat.sitting = model
    try:
        machine.set_state(at, model=seat)
        fired: bool = machine.events[trigger].trigger(seat)
        return model.state if fired else None
    finally:
        seat.sitting = None


__all__ = [
    "AWAITING_REASON",
    "CLOSED",
    "CLOSING",
    "CONFIRMING",
    "CORRECTING",
    "ELIGIBLE",
    "EXCLUDED",
    "NEEDS_REVIEW",
    "PENDING",
    "TERMINALS",
    "Screening",
    "define",
    "machine_for",
    "run",
    "states",
]
