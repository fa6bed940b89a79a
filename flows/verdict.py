"""Eligibility verdicts: each criterion's outcome and the screening's overall status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from flows.formula import with_derived
from flows.rules import Check, evaluate, truth
from flows.schema import Criterion, Protocol
from flows.values import AnswerValue


class Outcome(StrEnum):
    """Whether the subject meets a criterion (for exclusions: is free of the exclusion)."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class Status(StrEnum):
    """The screening's overall status."""

    IN_PROGRESS = "in_progress"
    INELIGIBLE = "ineligible"
    NEEDS_REVIEW = "needs_review"
    PENDING = "pending"
    ELIGIBLE = "eligible"


@dataclass(frozen=True, slots=True)
class Decision:
    """An investigator's decision on an overridable criterion that is not met."""

    criterion_id: str
    approve: bool
    reason: str


@dataclass(frozen=True)
class CriterionVerdict:
    """One criterion's outcome, with the comparisons behind it on demand.

    Attributes:
        criterion_id: The criterion.
        outcome: Met, not met, unknown or not applicable.
        overridable: Whether an investigator may decide instead of excluding.
        decision: The investigator's decision, for an overridable criterion that is not met.
        criterion: The criterion itself (for the explanation).
        answers: The answers it was judged on (for the explanation).
    """

    criterion_id: str
    outcome: Outcome
    overridable: bool
    decision: Decision | None = None
    criterion: Criterion | None = field(default=None, compare=False, repr=False)
    answers: Mapping[str, AnswerValue] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def _explained(self) -> tuple[tuple[Check, ...], tuple[Check, ...]]:
        # Explanations are read when a verdict is shown or exported, far less often than
        # verdicts are computed (after every answer), so they are derived only then.
        if (
            self.criterion is None
            or self.criterion.rule is None
            or self.outcome is Outcome.NOT_APPLICABLE
        ):
            return (), ()
        _, checks = evaluate(self.criterion.rule, self.answers)
        bad = self.criterion.type != "inclusion"
        if self.outcome is Outcome.MET:
            return checks, ()
        if self.outcome is Outcome.UNKNOWN:
            # What is missing: the rule's unknown comparisons, and those of its applicability
            # (a rule that holds still leaves the criterion unknown while that is unknown).
            unknown = [c for c in checks if c.result is None]
            if self.criterion.applies_if is not None:
                _, conditions = evaluate(self.criterion.applies_if, self.answers)
                unknown += [c for c in conditions if c.result is None]
            return checks, tuple(unknown)
        return checks, tuple(c for c in checks if c.supports is bad)

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every comparison of the rule, in rule order."""
        return self._explained[0]

    @property
    def against(self) -> tuple[Check, ...]:
        """The comparisons that made the criterion not met (or may, when unknown)."""
        return self._explained[1]

    @property
    def passes(self) -> bool:
        """Met, not applicable, or not met but approved by the investigator."""
        if self.outcome in (Outcome.MET, Outcome.NOT_APPLICABLE):
            return True
        return (
            self.outcome is Outcome.NOT_MET and self.decision is not None and self.decision.approve
        )

    @property
    def excludes(self) -> bool:
        """Not met, and either not overridable or rejected by the investigator."""
        return (
            self.outcome is Outcome.NOT_MET
            and not self.passes
            and (not self.overridable or self.decision is not None)
        )

    @property
    def awaits_review(self) -> bool:
        """Not met, overridable, and not decided yet; or left to the investigator's judgement."""
        if self.criterion is not None and self.criterion.judged_by and self.decision is None:
            return True
        return self.outcome is Outcome.NOT_MET and self.overridable and self.decision is None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall status with every criterion's verdict, in protocol order."""

    status: Status
    criteria: tuple[CriterionVerdict, ...]

    @property
    def excluded_by(self) -> tuple[CriterionVerdict, ...]:
        """Criteria that exclude the subject."""
        return tuple(cv for cv in self.criteria if cv.excludes)

    @property
    def awaiting_review(self) -> tuple[CriterionVerdict, ...]:
        """Overridable criteria not met and not yet decided by an investigator."""
        return tuple(cv for cv in self.criteria if cv.awaits_review)

    @property
    def unknown(self) -> tuple[CriterionVerdict, ...]:
        """Criteria that wait for an answer (those left to the investigator wait for them)."""
        return tuple(
            cv for cv in self.criteria if cv.outcome is Outcome.UNKNOWN and not cv.awaits_review
        )

    def of(self, criterion_id: str) -> CriterionVerdict:
        """The verdict of one criterion."""
        return next(cv for cv in self.criteria if cv.criterion_id == criterion_id)


# A criterion's verdict depends on nothing but the answers to the questions it reads and the
# decision on it. Each step judges every criterion anew, yet most of them read answers that
# the step did not touch, so verdicts are remembered per criterion by those values: from the
# step after a criterion's questions are answered to the end of the screening, it is looked
# up, not judged (each lookup saves building a verdict, about half the cost of judging).
# Bounded: a criterion that has seen this many different sets of values starts afresh.
MEMO_SIZE = 1024


def judge(
    criterion: Criterion,
    answers: Mapping[str, AnswerValue],
    decision: Decision | None = None,
) -> CriterionVerdict:
    """Judge one criterion against the current answers.

    Args:
        criterion: The criterion.
        answers: Current (not retired) answers by question id.
        decision: The investigator's decision on it, if any.

    Returns:
        The criterion's verdict. A decision is kept only while the criterion is not met.
    """
    key = (*[answers.get(q) for q in criterion.questions], decision)
    memo = criterion.verdict_memo
    verdict: CriterionVerdict | None = memo.get(key)
    if verdict is None:
        # Explained later from the criterion's own answers only: the same values, the same
        # explanation, whichever screening's answers it was first judged on.
        own = {q: answers[q] for q in criterion.questions if q in answers}
        verdict = _judge(criterion, own, decision)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[key] = verdict
    return verdict


def _judge(
    criterion: Criterion,
    answers: Mapping[str, AnswerValue],
    decision: Decision | None = None,
) -> CriterionVerdict:
    """:func:`judge` without the memo."""
    overridable = criterion.overridable
    if criterion.judged_by is not None:
        # The investigator's judgement: unknown until decided, then what was decided.
        if decision is None:
            return CriterionVerdict(criterion.id, Outcome.UNKNOWN, True, None, criterion)
        outcome = Outcome.MET if decision.approve else Outcome.NOT_MET
        return CriterionVerdict(criterion.id, outcome, True, decision, criterion)
    if not any(q in answers for q in criterion.questions):
        # Nothing it reads is answered yet: every comparison is unknown, and Kleene logic
        # keeps an expression of unknowns unknown (most criteria, early in a screening).
        return CriterionVerdict(
            criterion.id, Outcome.UNKNOWN, overridable, None, criterion, answers
        )
    applies = truth(criterion.applies_if, answers)
    if applies is False:
        return CriterionVerdict(criterion.id, Outcome.NOT_APPLICABLE, overridable)
    assert criterion.rule is not None  # a criterion without one is judged (above)
    result = truth(criterion.rule, answers)
    if result is None or applies is None:
        return CriterionVerdict(
            criterion.id, Outcome.UNKNOWN, overridable, None, criterion, answers
        )
    # The rule says what an inclusion requires, or what an exclusion excludes.
    met = result if criterion.type == "inclusion" else not result
    if met:
        return CriterionVerdict(criterion.id, Outcome.MET, overridable, None, criterion, answers)
    return CriterionVerdict(
        criterion.id,
        Outcome.NOT_MET,
        overridable,
        decision if overridable else None,
        criterion,
        answers,
    )


def assess(
    protocol: Protocol,
    answers: Mapping[str, AnswerValue],
    decisions: Mapping[str, Decision],
    *,
    complete: bool,
) -> Verdict:
    """Judge every criterion and derive the overall status.

    Args:
        protocol: The protocol.
        answers: Current answers.
        decisions: Investigator decisions by criterion id.
        complete: Whether every relevant question has been asked.

    Returns:
        Ineligible as soon as a criterion excludes; otherwise in progress until complete;
        then needs review, pending or eligible.
    """
    answers = with_derived(protocol, answers)
    criteria = tuple(judge(c, answers, decisions.get(c.id)) for c in protocol.criteria)
    if any(cv.excludes for cv in criteria):
        status = Status.INELIGIBLE
    elif not complete:
        status = Status.IN_PROGRESS
    elif any(cv.awaits_review for cv in criteria):
        status = Status.NEEDS_REVIEW
    elif any(cv.outcome is Outcome.UNKNOWN for cv in criteria):
        status = Status.PENDING
    else:
        status = Status.ELIGIBLE
    return Verdict(status, criteria)
