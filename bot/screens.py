"""What the bot shows: a question with its buttons, an outcome with its actions, lists.

Plain functions from a screening to text and buttons; nothing here sends or records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.callbacks import Action, Callback
from bot.conversation import Mark
from bot.i18n import REASONS, t
from bot.keyboards import Button, Keyboard, keyboard, tap
from bot.service import ScreeningService
from flows import UNKNOWN, AnswerValue, Protocol, current_question, verdict_of
from flows.checklist import expected
from flows.dialog import (
    ELIGIBLE,
    EXCLUDED,
    NEEDS_REVIEW,
    PENDING,
    missing,
    previous_question,
    relevant_questions,
)
from flows.render import outcome_text, question_text, summary
from flows.schema import (
    ChoiceQuestion,
    LabQuestion,
    NumberQuestion,
    Question,
    YesNoQuestion,
)
from flows.showing import answer_text
from flows.text import Lang
from storage.records import Screening, Staff


def screen(service: ScreeningService, screening: Screening, lang: Lang) -> tuple[str, Keyboard]:
    """The current question with its buttons, or the outcome with its actions."""
    protocol = service.protocol_for(screening)
    question = current_question(protocol, screening.state)
    if question is not None:
        return _question(protocol, screening, question, lang)
    return _outcome(protocol, screening, lang)


def _question(
    protocol: Protocol, screening: Screening, question: Question, lang: Lang
) -> tuple[str, Keyboard]:
    state, sid, rev = screening.state, screening.id, screening.row_version
    text = f"[{screening.code}] " + question_text(protocol, state, lang)
    if question.id in state.answers:
        shown = answer_text(protocol, question.id, state.answers[question.id], lang)
        text += "\n" + t("current_answer", lang, answer=shown)
    invitation = panel_invitation(protocol, question, lang)
    if invitation is not None and question.id not in state.answers:
        text += "\n\n" + invitation
    qi = protocol.question_index[question.id]
    rows: list[list[Button]] = []
    if isinstance(question, YesNoQuestion):
        rows.append(
            [
                tap(t("b_yes", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:y")),
                tap(t("b_no", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:n")),
            ]
        )
    elif isinstance(question, ChoiceQuestion):
        buttons = [
            tap(o.text.get(lang), Callback(Action.ANSWER, sid, rev, f"{qi}:o{i}"))
            for i, o in enumerate(question.options)
        ]
        short = all(len(o.text.get(lang)) <= 4 for o in question.options)
        rows += [buttons] if short else [[b] for b in buttons]
    last = [tap(t("b_unknown", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:u"))]
    if previous_question(protocol, state) is not None:
        last.append(tap(t("b_back", lang), Callback(Action.PREVIOUS, sid, rev, str(qi))))
    rows.append(last)
    return text, keyboard(rows)


def _outcome(protocol: Protocol, screening: Screening, lang: Lang) -> tuple[str, Keyboard]:
    state, sid, rev = screening.state, screening.id, screening.row_version
    verdict = verdict_of(protocol, state)
    text = (
        f"[{screening.code}] {outcome_text(protocol, state, verdict, lang)}\n\n"
        f"{summary(protocol, verdict, lang)}"
    )
    correct = tap(t("b_correct", lang), Callback(Action.CORRECT, sid, rev))
    results = [tap(t("b_results", lang), Callback(Action.RESULTS, sid, rev))]
    confirm = tap(t("b_confirm_exclusion", lang), Callback(Action.CONFIRM_EXCLUSION, sid, rev))
    actions: dict[str, tuple[str, list[Button]]] = {
        EXCLUDED: ("excluded_actions", [confirm]),
        NEEDS_REVIEW: (
            "review_waiting",
            results if missing(protocol, state.answers, verdict) else [],
        ),
        PENDING: ("pending_actions", results),
        ELIGIBLE: ("sign_prompt", [tap(t("b_sign", lang), Callback(Action.SIGN, sid, rev))]),
    }
    key, buttons = actions[state.at]
    text += "\n\n" + t(key, lang)
    rows = [[*buttons, correct]]
    if state.at in (PENDING, NEEDS_REVIEW):
        if missing(protocol, state.answers, verdict):
            rows.append(
                [
                    tap(
                        t("b_remind", lang, when=t(f"remind_{days}", lang)),
                        Callback(Action.REMIND, sid, rev, str(days)),
                    )
                    for days in (1, 3, 7)
                ]
            )
        rows.append([tap(t("b_not_completed", lang), Callback(Action.NOT_COMPLETED, sid, rev))])
    return text, keyboard(rows)


def answered_rows(protocol: Protocol, screening: Screening, lang: Lang) -> list[list[Button]]:
    """One button per answered question, to pick the answer to change."""
    answers = screening.state.answers
    return [
        [
            tap(
                f"{q.label.get(lang)}: {answer_text(protocol, q.id, answers[q.id], lang)}",
                Callback(
                    Action.GO_TO,
                    screening.id,
                    screening.row_version,
                    str(protocol.question_index[q.id]),
                ),
            )
        ]
        for q in relevant_questions(protocol, answers)
        if q.id in answers
    ]


def review_screen(
    protocol: Protocol, screening: Screening, lang: Lang
) -> tuple[str, Keyboard | None]:
    """An investigator's view of a screening: the outcome, Approve and Reject per criterion."""
    verdict = verdict_of(protocol, screening.state)
    rows = []
    for cv in verdict.awaiting_review:
        index = [c.id for c in protocol.criteria].index(cv.criterion_id)
        number = protocol.criteria[index].number
        rows.append(
            [
                tap(
                    t("b_approve", lang, number=number),
                    Callback(Action.DECIDE, screening.id, screening.row_version, f"{index}:a"),
                ),
                tap(
                    t("b_reject", lang, number=number),
                    Callback(Action.DECIDE, screening.id, screening.row_version, f"{index}:r"),
                ),
            ]
        )
    text = (
        f"[{screening.code}] {outcome_text(protocol, screening.state, verdict, lang)}"
        f"\n\n{summary(protocol, verdict, lang)}"
    )
    return text, keyboard(rows) if rows else None


def reason_buttons(screening: Screening, lang: Lang) -> Keyboard:
    """The usual reasons for a change, and "Other" to type one."""
    sid, rev = screening.id, screening.row_version
    rows = [
        [tap(t(key, lang), Callback(Action.REASON, sid, rev, str(i)))]
        for i, key in enumerate(REASONS)
    ]
    rows.append([tap(t("b_other", lang), Callback(Action.REASON, sid, rev, "o"))])
    return keyboard(rows)


def fits(protocol: Protocol, data: Callback) -> bool:
    """Whether the indices a button carries exist in the screening's protocol."""
    match data.action:
        case Action.ANSWER:
            if data.index() >= len(protocol.questions):
                return False
            return tapped_value(protocol.questions[data.index()], data.choice) is not None
        case Action.GO_TO | Action.PREVIOUS:
            return data.index() < len(protocol.questions)
        case Action.DECIDE:
            return data.index() < len(protocol.criteria)
        case Action.REASON:
            return data.arg == "o" or int(data.arg) < len(REASONS)
        case Action.CHECK:
            if data.index() >= len(protocol.questions):
                return False
            question = protocol.questions[data.index()]
            return isinstance(question, YesNoQuestion) and question.group is not None
    return True


def tapped_value(question: Question, choice: str) -> AnswerValue | None:
    """The answer a button of ``question`` stands for; ``None`` if it has no such button."""
    if choice == "u":
        return UNKNOWN
    if isinstance(question, YesNoQuestion) and choice in {"y", "n"}:
        return choice == "y"
    if isinstance(question, ChoiceQuestion) and choice.startswith("o"):
        index = int(choice[1:])
        return question.options[index].id if index < len(question.options) else None
    return None


def staff_line(staff: Staff, lang: Lang) -> str:
    """One staff member, for /staff."""
    return t(
        "staff_saved",
        lang,
        id=staff.telegram_id,
        name=staff.display_name,
        role=staff.role.value,
        state=t("active" if staff.active else "removed", lang),
    )


def ago(delta: timedelta) -> str:
    """How long ago, as short as a phone's button needs: ``5 min``, ``3 h``, ``2 d``."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


_MARKS: dict[Mark, AnswerValue] = {"y": True, "n": False, "u": UNKNOWN}
NEXT_MARK: dict[Mark, Mark] = {"y": "n", "n": "u", "u": "y"}
"""Tapping an item goes yes → no → unknown → yes."""


def mark_value(mark: Mark) -> AnswerValue:
    """The answer a checklist mark stands for."""
    return _MARKS[mark]


def expected_marks(protocol: Protocol, items: Sequence[str]) -> dict[str, Mark]:
    """Each item (a yes/no question's id) with the answer that excludes no one."""
    marks: dict[str, Mark] = {}
    for qid in items:
        question = protocol.questions_by_id[qid]
        assert isinstance(question, YesNoQuestion)
        marks[qid] = "n" if expected(protocol, question) is False else "y"
    return marks


def checklist_screen(
    protocol: Protocol,
    screening: Screening,
    marks: dict[str, Mark],
    lang: Lang,
) -> tuple[str, Keyboard]:
    """The checklist: every statement in full with its answer; a button per item; record."""
    sid, rev = screening.id, screening.row_version
    usual = expected_marks(protocol, list(marks))
    lines = [f"[{screening.code}] {t('checklist_intro', lang)}"]
    rows: list[list[Button]] = []
    for number, (qid, mark) in enumerate(marks.items(), 1):
        question = protocol.questions_by_id[qid]
        answer = answer_text(protocol, qid, mark_value(mark), lang)
        key = "checklist_item" if mark == usual[qid] else "checklist_changed"
        lines.append(t(key, lang, number=number, text=question.text.get(lang), answer=answer))
        label = question.label.get(lang)
        index = str(protocol.question_index[qid])
        rows.append(
            [
                tap(
                    t("b_check_item", lang, number=number, label=label, answer=answer),
                    Callback(Action.CHECK, sid, rev, index),
                )
            ]
        )
    done = "b_all_true" if marks == usual else "b_record_checklist"
    last = [tap(t(done, lang, count=len(marks)), Callback(Action.CHECKED, sid, rev))]
    first = protocol.question_index[next(iter(marks))]
    if previous_question(protocol, screening.state) is not None:
        last.append(tap(t("b_back", lang), Callback(Action.PREVIOUS, sid, rev, str(first))))
    rows.append(last)
    return "\n".join(lines), keyboard(rows)


def checklist_offer(
    protocol: Protocol,
    screening: Screening,
    marks: dict[str, Mark],
    question_screen: tuple[str, Keyboard],
    lang: Lang,
) -> tuple[str, Keyboard]:
    """The current question as usual, and below it its checklist to answer in one tap."""
    text, markup = question_screen
    sid, rev = screening.id, screening.row_version
    lines = [text, "", t("checklist_offer", lang, count=len(marks))]
    for number, (qid, mark) in enumerate(marks.items(), 1):
        question = protocol.questions_by_id[qid]
        answer = answer_text(protocol, qid, mark_value(mark), lang)
        lines.append(
            t("checklist_item", lang, number=number, text=question.text.get(lang), answer=answer)
        )
    rows = [list(row) for row in markup.inline_keyboard]
    rows.append(
        [
            tap(t("b_all_true", lang, count=len(marks)), Callback(Action.CHECKED, sid, rev)),
            tap(t("b_change_items", lang), Callback(Action.CHECKLIST, sid, rev)),
        ]
    )
    return "\n".join(lines), keyboard(rows)


def panel_invitation(protocol: Protocol, question: Question, lang: Lang) -> str | None:
    """How to type many values in one message, at the first numeric and first lab question.

    The labels listed are those of the numeric questions from this one on.
    """
    numeric = [q for q in protocol.questions if isinstance(q, LabQuestion | NumberQuestion)]
    labs = [q for q in numeric if isinstance(q, LabQuestion)]
    if question.id not in {q.id for q in (numeric[:1] + labs[:1])}:
        return None
    ahead = numeric[numeric.index(question) :]  # type: ignore[arg-type]
    if len(ahead) < 2:
        return None
    names = [q.aliases[0] if q.aliases else q.label.en for q in ahead]
    example = ", ".join(f"{name} …" for name in names[:3])
    return t("panel_invite", lang, labels=", ".join(names), example=example)
