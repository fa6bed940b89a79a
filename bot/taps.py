"""What each button does, once the tap is checked (``bot.buttons``): one function an action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from telegram import Update

from bot.callbacks import Action, Callback
from bot.commands import ask_close_reason, back_list
from bot.conversation import (
    CHECKLIST_MARK,
    ChecklistHeld,
    ChoosingReason,
    Confirming,
    Conversation,
    DecisionReason,
    Idle,
    PanelHeld,
    Typed,
    TypingReason,
)
from bot.i18n import REASONS, t
from bot.outcomes import after, answer_held
from bot.results import Outcome, Planned
from bot.screens import NEXT_MARK, mark_value, tapped_value
from bot.service import SIGN_MEANING
from bot.shell import Context, Shell
from bot.typed import record_ahead, record_batch
from flows import CompletePending, GoBack, Protocol
from flows.dialog import previous_question
from flows.showing import answer_text
from flows.text import Lang
from storage.records import CloseKind, Screening


@dataclass
class Tap:
    """A checked tap on a current button of a screening: everything an action needs."""

    shell: Shell
    update: Update
    context: Context
    screening: Screening
    data: Callback

    @cached_property
    def lang(self) -> Lang:
        """The language of the person who tapped."""
        return self.shell.lang(self.update, self.context)

    @cached_property
    def actor(self) -> int:
        """Who tapped."""
        return self.shell.staff(self.context).telegram_id

    @cached_property
    def protocol(self) -> Protocol:
        """The screening's protocol version."""
        return self.shell.service.protocol_for(self.screening)

    @property
    def conversation(self) -> Conversation:
        """What the chat is in the middle of."""
        return self.shell.conversation(self.context)

    async def keep(self, conversation: Conversation) -> None:
        """Make ``conversation`` the chat's state."""
        await self.shell.keep(self.context, conversation)

    async def show(self) -> None:
        """Show the screening as it stands."""
        await self.shell.show(self.update, self.context, self.screening)

    async def say(self, text: str) -> None:
        """Send a line to the chat."""
        await self.shell.send(self.update, self.context, text)


async def _answer(tap: Tap) -> None:
    question = tap.protocol.questions[tap.data.index()]
    value = tapped_value(question, tap.data.choice)
    assert value is not None  # checked by fits() before
    echo = answer_text(tap.protocol, question.id, value, tap.lang)
    tapped = f"[tap] {echo}"  # nothing was typed: record the label that was tapped
    planned = tap.shell.service.plan_value(
        tap.screening, question.id, value, tapped, actor=tap.actor
    )
    outcome = await tap.shell.record(planned, tap.update.update_id)
    prefix = t("saved", tap.lang, echo=echo)
    await after(
        tap.shell,
        tap.update,
        tap.context,
        outcome,
        screening=tap.screening,
        raw=tapped,
        echo_prefix=prefix,
    )


async def _go_back(tap: Tap) -> None:
    if tap.data.action is Action.PREVIOUS:
        target = previous_question(tap.protocol, tap.screening.state)
    else:
        target = tap.protocol.questions[tap.data.index()].id
    if target is None:
        await tap.show()
        return
    planned = tap.shell.service.plan(tap.screening, GoBack(target), actor=tap.actor)
    await _record(tap, planned)


async def _results(tap: Tap) -> None:
    await _record(tap, tap.shell.service.plan(tap.screening, CompletePending(), actor=tap.actor))


async def _record(tap: Tap, planned: Outcome | Planned) -> None:
    outcome = await tap.shell.record(planned, tap.update.update_id)
    await after(tap.shell, tap.update, tap.context, outcome, screening=tap.screening)


async def _correct(tap: Tap) -> None:
    await back_list(tap.shell, tap.update, tap.context, tap.screening)


async def _record_held(tap: Tap) -> None:
    phase = tap.conversation.phase
    if tap.data.arg == "batch" and isinstance(phase, PanelHeld) and phase.about(tap.screening):
        await record_batch(tap.shell, tap.update, tap.context, tap.screening, phase)
    elif tap.data.arg == "one" and isinstance(phase, Confirming) and _held(phase, tap):
        await answer_held(tap.shell, tap.update, tap.context, tap.screening, phase.held, None)
    else:  # a value held for another screening, or no longer held
        await tap.show()


async def _retype(tap: Tap) -> None:
    await tap.keep(tap.conversation.but(phase=Idle()))
    await tap.show()


async def _reason(tap: Tap) -> None:
    phase = tap.conversation.phase
    if not isinstance(phase, ChoosingReason) or not _held(phase, tap):
        await tap.show()
    elif tap.data.arg == "o":
        await tap.keep(tap.conversation.but(phase=TypingReason(held=phase.held)))
        await tap.say(t("reason_typed_ask", tap.lang))
    else:
        reason = t(REASONS[int(tap.data.arg)], "en")
        await answer_held(tap.shell, tap.update, tap.context, tap.screening, phase.held, reason)


def _held(phase: Confirming | ChoosingReason, tap: Tap) -> bool:
    return phase.held.screening_id == tap.screening.id


async def _checklist(tap: Tap) -> None:
    """Show the checklist's items one button each, to change one; or record them all."""
    marks = tap.shell.checklist_marks(tap.context, tap.screening)
    if marks is None:
        await tap.show()
    elif tap.data.action is Action.CHECKLIST:
        screening = tap.screening
        held = ChecklistHeld(
            screening_id=screening.id, revision=screening.row_version, marks=marks, editing=True
        )
        await tap.keep(tap.conversation.but(phase=held))
        await tap.show()
    else:
        items = {}
        for qid, mark in marks.items():
            value = mark_value(mark)
            shown = answer_text(tap.protocol, qid, value, tap.lang)
            raw = f"{CHECKLIST_MARK} {answer_text(tap.protocol, qid, value, 'en')}"
            items[qid] = Typed(raw=raw, value=value, echo=shown)
        await record_ahead(tap.shell, tap.update, tap.context, tap.screening, items)


async def _check(tap: Tap) -> None:
    """Change one checklist item's answer: yes → no → unknown → yes."""
    phase = tap.conversation.phase
    if isinstance(phase, ChecklistHeld) and phase.about(tap.screening):
        qid = tap.protocol.questions[tap.data.index()].id
        if qid in phase.marks:
            marks = {**phase.marks, qid: NEXT_MARK[phase.marks[qid]]}
            await tap.keep(tap.conversation.but(phase=phase.but(marks=marks)))
    await tap.show()


async def _remind(tap: Tap) -> None:
    due = tap.shell.clock() + timedelta(days=int(tap.data.arg))
    await tap.shell.db(
        tap.shell.repo.add_notice, tap.screening.id, tap.actor, "reminder", due, sent=False
    )
    date = f"{due:%Y-%m-%d %H:%M}"
    await tap.say(t("reminder_set", tap.lang, code=tap.screening.code, date=date))


async def _close(tap: Tap) -> None:
    """Sign, or confirm the exclusion."""
    signing = tap.data.action is Action.SIGN
    kind: CloseKind = "signed" if signing else "exclusion_confirmed"
    closed = await tap.shell.db(
        tap.shell.service.close,
        tap.screening,
        kind,
        actor=tap.actor,
        reason=SIGN_MEANING if signing else None,
        update_id=tap.update.update_id,
    )
    if isinstance(closed, Screening):
        name = tap.shell.staff(tap.context).display_name
        await tap.say(t(kind, tap.lang, code=closed.code, name=name))
    else:
        await after(tap.shell, tap.update, tap.context, closed, screening=tap.screening)


async def _not_completed(tap: Tap) -> None:
    await ask_close_reason(tap.shell, tap.update, tap.context, tap.screening, "not_completed")


async def _decide(tap: Tap) -> None:
    """Approve or Reject: ask the investigator for the reason."""
    approve = tap.data.choice == "a"
    criterion = tap.protocol.criteria[tap.data.index()]
    phase = DecisionReason(
        screening_id=tap.screening.id,
        revision=tap.screening.row_version,
        criterion_id=criterion.id,
        approve=approve,
    )
    await tap.keep(tap.conversation.but(phase=phase))
    verdict = t("approved" if approve else "rejected", tap.lang)
    await tap.say(t("decision_reason", tap.lang, number=criterion.number, verdict=verdict))


ACTIONS: dict[Action, Callable[[Tap], Awaitable[None]]] = {
    Action.ANSWER: _answer,
    Action.PREVIOUS: _go_back,
    Action.GO_TO: _go_back,
    Action.CORRECT: _correct,
    Action.RECORD: _record_held,
    Action.RETYPE: _retype,
    Action.REASON: _reason,
    Action.CHECKLIST: _checklist,
    Action.CHECKED: _checklist,
    Action.CHECK: _check,
    Action.REMIND: _remind,
    Action.CONFIRM_EXCLUSION: _close,
    Action.SIGN: _close,
    Action.NOT_COMPLETED: _not_completed,
    Action.RESULTS: _results,
    Action.DECIDE: _decide,
}
"""The actions on a screening's current screen; opening, language and trial are handled
before (``bot.buttons``)."""


async def act(tap: Tap) -> None:
    """Do what a checked, current button says."""
    handler = ACTIONS.get(tap.data.action)
    if handler is None:
        await tap.show()
        return
    await handler(tap)
