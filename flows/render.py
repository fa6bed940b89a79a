"""Text for people: questions, explanations and summaries, in English or Chinese.

Pure functions over the engine's data, shared by the Telegram bot, the console and the exports
so that every surface explains a verdict in the same words.
"""

from __future__ import annotations

from flows.catalogue import tr
from flows.dialog import ScreeningState, current_question, missing_for, progress, verdict_of
from flows.formula import with_derived
from flows.rules import Check
from flows.schema import ChoiceQuestion, LabQuestion, NumberQuestion, Protocol
from flows.showing import answer_text
from flows.text import Lang
from flows.units import ANALYTES
from flows.values import AnswerValue
from flows.verdict import CriterionVerdict, Outcome, Status, Verdict

_OPERATORS = {"eq": "=", "ne": "≠", "in": "∈", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}

_MARK = {
    Outcome.MET: "✅",
    Outcome.NOT_MET: "❌",
    Outcome.UNKNOWN: "❓",
    Outcome.NOT_APPLICABLE: "➖",
}


def word(key: str, lang: Lang, **params: object) -> str:
    """One phrase of the screens' vocabulary (:mod:`flows.catalogue`)."""
    return tr(key, lang, **params)


def status_label(status: Status, lang: Lang) -> str:
    """A screening's status as a reader says it: "pending results"."""
    return tr(f"status_{status.value}", lang)


def question_label(protocol: Protocol, question_id: str, lang: Lang) -> str:
    """A question's short label ("Creatinine"), or a derived value's ("CrCl")."""
    question = protocol.questions_by_id.get(question_id)
    if question is not None:
        return question.label.get(lang)
    derived = protocol.derived_by_id.get(question_id)
    return derived.short.get(lang) if derived is not None else question_id


def _threshold(protocol: Protocol, check: Check, lang: Lang) -> str:
    question = protocol.questions_by_id.get(check.question_id)
    if check.operator == "between":
        low, high = check.threshold.split("–")
        return word("between", lang, low=low, high=high)
    if (
        check.operator in {"lt", "le", "gt", "ge"}
        and isinstance(question, NumberQuestion)
        and question.unit == "%"
    ):
        return f"{_OPERATORS[check.operator]} {check.threshold}%"
    threshold = check.threshold
    if isinstance(question, ChoiceQuestion):
        labels = {o.id: o.text.get(lang) for o in question.options}
        threshold = ", ".join(labels.get(t, t) for t in threshold.split(", "))
    elif threshold in {"yes", "no"} and lang == "zh":
        threshold = "是" if threshold == "yes" else "否"
    suffix = ""
    derived = protocol.derived_by_id.get(check.question_id)
    if derived is not None:
        suffix = f" {derived.unit}"
    elif check.of == "uln":
        suffix = "× ULN"
    elif isinstance(question, NumberQuestion):
        suffix = "" if question.unit == "years" else f" {question.unit}"
    elif isinstance(question, LabQuestion) and question.analyte in ANALYTES:
        suffix = f" {ANALYTES[question.analyte].canonical}"
    return f"{_OPERATORS.get(check.operator, check.operator)} {threshold}{suffix}"


def describe_check(
    protocol: Protocol, check: Check, answers: dict[str, AnswerValue] | None, lang: Lang
) -> str:
    """``Creatinine: 2.5 mg/dL … (2.08× ULN); required ≤ 2× ULN``."""
    label = question_label(protocol, check.question_id, lang)
    derived = protocol.derived_by_id.get(check.question_id)
    if derived is not None and answers is not None:
        answers = dict(with_derived(protocol, answers))
    value = (answers or {}).get(check.question_id)
    shown = (
        answer_text(protocol, check.question_id, value, lang)
        if answers is not None
        else (check.actual or word("not_answered", lang))
    )
    if derived is not None and answers is not None:
        # A computed value is shown with what it was computed from.
        inputs = ", ".join(
            f"{question_label(protocol, q, lang)} {answer_text(protocol, q, answers.get(q), lang)}"
            for q in derived.inputs
        )
        method = f"{derived.method.get(lang)}: " if derived.method else ""
        shown += f" ({method}{inputs})"
    return f"{label}: {shown}; {word('required', lang)} {_threshold(protocol, check, lang)}"


def _reasons(
    protocol: Protocol, cv: CriterionVerdict, answers: dict[str, AnswerValue], lang: Lang
) -> list[str]:
    return [f"  • {describe_check(protocol, c, answers, lang)}" for c in cv.against]


def criterion_number(protocol: Protocol, criterion_id: str) -> str:
    """The criterion's number as the protocol writes it."""
    criterion = protocol.criteria_by_id.get(criterion_id)
    return criterion.number if criterion else criterion_id


def outcome_text(protocol: Protocol, state: ScreeningState, verdict: Verdict, lang: Lang) -> str:
    """What the screening's outcome is and why: exclusion, review, pending or eligible."""
    answers = dict(state.answers)
    lines: list[str] = []
    if verdict.status is Status.INELIGIBLE:
        for cv in verdict.excluded_by:
            criterion = protocol.criteria_by_id[cv.criterion_id]
            # The deciding answer first, the criterion's full wording after it.
            lines.append(word("excluded", lang, number=criterion.number))
            lines += _reasons(protocol, cv, answers, lang)
            if cv.decision is not None:
                lines.append(f"  ({word('investigator_rejected', lang)}: {cv.decision.reason})")
            lines.append(
                word(
                    "criterion_text", lang, name=criterion.name(lang), text=criterion.text.get(lang)
                )
            )
        return "\n".join(lines)
    review, pending = verdict.awaiting_review, verdict.unknown
    if review and pending:
        # One state with its next steps, in the order the screening will finish in.
        lines.append(word("review_then_results", lang))
    for cv in review:
        criterion = protocol.criteria_by_id[cv.criterion_id]
        lines.append(word("review", lang, number=criterion.number))
        lines += _reasons(protocol, cv, answers, lang)
        if criterion.override_note:
            lines.append(criterion.override_note.get(lang))
    for cv in pending:
        number = criterion_number(protocol, cv.criterion_id)
        lines.append(word("awaited" if review else "pending", lang, number=number))
        lines.append(
            f"  {word('missing', lang)}: "
            + ", ".join(
                question_label(protocol, q, lang) for q in missing_for(protocol, answers, cv)
            )
        )
    if review and pending:
        lines.append(word("review_then_results_next", lang))
    if not lines and verdict.status is Status.ELIGIBLE:
        approved = any(cv.decision is not None for cv in verdict.criteria)
        lines.append(word("eligible_approved" if approved else "eligible", lang))
    return "\n".join(lines)


def summary(protocol: Protocol, verdict: Verdict, lang: Lang) -> str:
    """One line per criterion: its mark, number and short name, and what is special about it.

    Met ✅ and not met ❌ are plain; a criterion the investigator approved ☑️, one awaiting
    their decision ⚖️, one whose result is pending ❓ and one the screening stopped before ⏹
    each have a mark and words of their own.
    """
    stopped = verdict.status is Status.INELIGIBLE
    lines = []
    for cv in verdict.criteria:
        criterion = protocol.criteria_by_id[cv.criterion_id]
        name = criterion.name(lang)
        key = None
        if cv.decision is not None:
            key = "approved" if cv.decision.approve else "rejected"
        elif cv.awaits_review:
            key = "awaiting"
        elif cv.outcome is Outcome.UNKNOWN:
            key = "not_reached" if stopped else "pending"
        elif cv.outcome is Outcome.NOT_APPLICABLE:
            key = "not_applicable"
        if key is None:
            lines.append(f"{_MARK[cv.outcome]} {name}")
        else:
            reason = cv.decision.reason if cv.decision is not None else ""
            lines.append(tr(f"legend_{key}", lang, name=name, reason=reason))
    return "\n".join(lines)


def short_title(protocol: Protocol, lang: Lang) -> str:
    """The trial's name for people: its summary line, else its title."""
    return (protocol.summary or protocol.title).get(lang)


def trial_standing(protocol: Protocol, state: ScreeningState, lang: Lang) -> str:
    """One trial of a pass in a few words.

    For example "ThisCART19A bridge: not eligible, criterion 3 (Intention to HSCT: No)".
    """
    verdict = verdict_of(protocol, state)
    title = short_title(protocol, lang)
    if not state.finished:
        return f"{title}: {status_label(Status.IN_PROGRESS, lang)}"
    said = status_label(verdict.status, lang)
    if verdict.status is Status.INELIGIBLE and verdict.excluded_by:
        cv = verdict.excluded_by[0]
        number = criterion_number(protocol, cv.criterion_id)
        why = [
            f"{question_label(protocol, c.question_id, lang)}: "
            f"{answer_text(protocol, c.question_id, state.answers.get(c.question_id), lang)}"
            for c in cv.against[:1]
        ]
        said = word("standing_excluded", lang, number=number, why="; ".join(why))
    return f"{title}: {said}"


def where_it_stands(protocol: Protocol, state: ScreeningState, lang: Lang) -> str:
    """A few words for lists: "question 9", or the outcome ("pending results")."""
    if current_question(protocol, state) is None:
        return status_label(verdict_of(protocol, state).status, lang)
    pos, _ = progress(protocol, state)
    return f"第 {pos} 题" if lang == "zh" else f"question {pos}"


def question_text(protocol: Protocol, state: ScreeningState, lang: Lang) -> str:
    """The current question with its position and the criteria it serves."""
    question = current_question(protocol, state)
    if question is None:
        return ""
    pos, total = progress(protocol, state)
    left = total - pos
    served = [
        criterion_number(protocol, c) for c in protocol.criteria_of_question.get(question.id, ())
    ]
    # How many questions are left can only shrink as answers make some irrelevant, so it is
    # said as "up to": a total would jump ("10 of 27", then "11 of 26").
    header = (
        word("question_of", lang, pos=pos, left=left)
        if left
        else word("question_last", lang, pos=pos)
    )
    if served:
        header += f" · {word('criteria' if len(served) > 1 else 'criterion', lang)} " + ", ".join(
            served
        )
    lines = [header, question.text.get(lang)]
    if question.help:
        lines.append(f"ℹ️ {question.help.get(lang)}")
    return "\n".join(lines)
