"""Which questions a patient is asked: skip logic, and what is still missing."""

from __future__ import annotations

from collections.abc import Mapping

from flows.rules import truth
from flows.schema import Protocol, Question
from flows.values import UNKNOWN, AnswerValue, Unknown
from flows.verdict import CriterionVerdict, Verdict


def is_relevant(question: Question, answers: Mapping[str, AnswerValue]) -> bool:
    """Whether a question is to be asked; unknown relevance errs on asking."""
    return truth(question.relevant_if, answers) is not False


def relevant_questions(protocol: Protocol, answers: Mapping[str, AnswerValue]) -> list[Question]:
    """The questions to ask given the answers so far, in order."""
    return [q for q in protocol.questions if is_relevant(q, answers)]


def missing_for(
    protocol: Protocol, answers: Mapping[str, AnswerValue], criterion: CriterionVerdict
) -> list[str]:
    """The questions still to be answered for this patient before ``criterion`` is decided.

    Only questions skip logic asks this patient count: a question asked of men is not missing
    for a woman, though the criterion's rule reads it.
    """
    needed = {q for check in criterion.against for q in protocol.answers_read(check.question_id)}
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
