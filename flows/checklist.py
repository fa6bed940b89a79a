"""Routine yes/no questions answered together: a checklist.

A protocol groups yes/no questions with ``group:``. When the first unanswered question of a
group comes up, the coordinator sees the group's questions in one message, each with its
*expected* answer, the one that by itself excludes no one ("yes" to consent, "no" to peripheral
blasts). One tap accepts them all; an item can be changed first. The answers are then recorded
one by one, each at its own question when the dialog reaches it, exactly as if tapped there: skip
logic, early stop and the audit trail are those of the question-by-question path.
"""

from __future__ import annotations

from flows.dialog import ScreeningState, is_relevant
from flows.schema import Protocol, Question, YesNoQuestion
from flows.verdict import Outcome, judge


def excludes_alone(protocol: Protocol, question: Question, answer: bool) -> bool:
    """Whether ``answer`` alone fails a criterion that cannot be overridden."""
    for cid in protocol.criteria_of_question.get(question.id, ()):
        criterion = protocol.criteria_by_id[cid]
        verdict = judge(criterion, {question.id: answer})
        if verdict.outcome is Outcome.NOT_MET and not criterion.overridable:
            return True
    return False


def expected(protocol: Protocol, question: YesNoQuestion) -> bool | None:
    """The answer that excludes no one by itself: yes when both do not; ``None`` when both do."""
    if not excludes_alone(protocol, question, True):
        return True
    if not excludes_alone(protocol, question, False):
        return False
    return None


def checklist(protocol: Protocol, state: ScreeningState) -> tuple[YesNoQuestion, ...]:
    """The checklist to show now: the current question's group, from it on, still unanswered.

    Empty when the current question belongs to no group or is answered already (a correction
    goes back to one question, and is asked on its own).
    """
    current = protocol.questions_by_id.get(state.at)
    if not isinstance(current, YesNoQuestion) or current.group is None:
        return ()
    if current.id in state.answers:
        return ()
    start = protocol.question_index[current.id]
    return tuple(
        q
        for q in protocol.questions[start:]
        if isinstance(q, YesNoQuestion)
        and q.group == current.group
        and q.id not in state.answers
        and is_relevant(q, state.answers)
    )
