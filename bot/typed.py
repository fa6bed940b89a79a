"""Typed text: a code or a reason the chat is waiting for, a lab panel, or an answer."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Update

from bot.callbacks import Action, Callback
from bot.commands import begin_together
from bot.conversation import (
    AwaitingCode,
    ClosingReason,
    DecisionReason,
    Idle,
    PanelHeld,
    Prefill,
    Reviewing,
    Typed,
    TypingReason,
)
from bot.i18n import t
from bot.keyboards import keyboard, tap
from bot.outcomes import after, answer_held, apply_prefills, notify_review
from bot.review import decide
from bot.shell import Context, Shell
from flows import Invalid, Parsed, Protocol
from flows.batch import parse_batch
from flows.messages import render
from flows.parsing import ParseResult
from flows.schema import LabQuestion, NumberQuestion
from storage.records import Screening


async def on_text(shell: Shell, update: Update, context: Context) -> None:
    """Typed text: what the chat waits for, several lab values, or an answer."""
    message = update.effective_message
    assert message is not None and message.text is not None
    text = message.text.strip()
    lang, staff = shell.lang(update, context), shell.staff(context)
    conversation = shell.conversation(context)
    phase = conversation.phase
    if isinstance(phase, AwaitingCode | TypingReason | ClosingReason | DecisionReason):
        # The text is what was asked for; whatever it does, the question is answered.
        await shell.keep(context, conversation.but(phase=Idle()))
        await _awaited(shell, update, context, phase, text)
        return
    screening = shell.current(context)
    if screening is None:
        reviewing = isinstance(phase, Reviewing)
        await shell.send(
            update, context, t("review_use_buttons" if reviewing else "no_current", lang)
        )
        return
    if screening.state.finished:
        await shell.show(update, context, screening)
        return
    protocol = shell.service.protocol_for(screening)
    batch = parse_batch(protocol, text)
    if batch is not None:
        await _offer_batch(shell, update, context, screening, protocol, batch)
        return
    planned = shell.service.plan_text(screening, text, actor=staff.telegram_id)
    outcome = await shell.record(planned, update.update_id)
    await after(shell, update, context, outcome, screening=screening, raw=text)


async def _awaited(
    shell: Shell,
    update: Update,
    context: Context,
    phase: AwaitingCode | TypingReason | ClosingReason | DecisionReason,
    text: str,
) -> None:
    lang, staff = shell.lang(update, context), shell.staff(context)
    if isinstance(phase, AwaitingCode):
        found = [shell.service.catalog.by_digest(d) for d in (phase.protocol_digest, *phase.also)]
        protocols = [p for p in found if p is not None]
        if len(protocols) < len(found):  # a protocol no longer loaded since the code was asked
            await shell.send(update, context, t("no_current", lang))
            return
        await begin_together(shell, update, context, protocols, text)
        return

    sid = phase.held.screening_id if isinstance(phase, TypingReason) else phase.screening_id
    revision = phase.held.revision if isinstance(phase, TypingReason) else phase.revision
    screening = await shell.screening(context, sid)
    if screening is None or screening.row_version != revision:
        if screening is not None:
            await shell.show(update, context, screening, t("outdated", lang, code=screening.code))
        return
    match phase:
        case ClosingReason(close=close):
            closed = await shell.db(
                shell.service.close,
                screening,
                close,
                actor=staff.telegram_id,
                reason=text,
                update_id=update.update_id,
            )
            if isinstance(closed, Screening):
                key = "cancelled" if close == "cancelled" else "closed_not_completed"
                await shell.send(update, context, t(key, lang, code=closed.code))
            else:
                await after(shell, update, context, closed, screening=screening)
        case TypingReason(held=held):
            await answer_held(shell, update, context, screening, held, text)
        case DecisionReason(criterion_id=criterion_id, approve=approve):
            await decide(shell, update, context, screening, criterion_id, approve, text)


async def _offer_batch(
    shell: Shell,
    update: Update,
    context: Context,
    screening: Screening,
    protocol: Protocol,
    batch: Sequence[tuple[str, str, ParseResult]],
) -> None:
    """Show back every value read from one message; one button records them all."""
    lang = shell.lang(update, context)
    problems = [
        t(
            "batch_invalid",
            lang,
            label=protocol.questions_by_id[q].label.get(lang),
            hint=render(r.hint, lang),
        )
        for q, _, r in batch
        if isinstance(r, Invalid)
    ]
    if problems:
        await shell.send(update, context, "\n".join(problems))
        return
    read = [
        (q, Typed(raw=raw, value=r.value, echo=render(r.echo, lang)), r.confirm is not None)
        for q, raw, r in batch
        if isinstance(r, Parsed)
    ]
    items = [
        f"• {protocol.questions_by_id[q].label.get(lang)}: {typed.echo}" + (" ⚠" if unusual else "")
        for q, typed, unusual in read
    ]
    given = {q for q, _, _ in read} | set(screening.state.answers)
    start = protocol.question_index[screening.state.at]
    still = [
        q.label.get(lang)
        for q in protocol.questions[start:]
        if isinstance(q, LabQuestion | NumberQuestion) and q.id not in given
    ]
    if still:
        items.append(t("batch_missing", lang, labels=", ".join(still)))
    sid, rev = screening.id, screening.row_version
    phase = PanelHeld(screening_id=sid, revision=rev, items=tuple((q, v) for q, v, _ in read))
    await shell.keep(context, shell.conversation(context).but(phase=phase))
    markup = keyboard(
        [
            [
                tap(t("b_record", lang), Callback(Action.RECORD, sid, rev, "batch")),
                tap(t("b_retype", lang), Callback(Action.RETYPE, sid, rev)),
            ]
        ]
    )
    await shell.send(update, context, t("batch", lang, items="\n".join(items)), markup)


async def record_batch(
    shell: Shell, update: Update, context: Context, screening: Screening, panel: PanelHeld
) -> None:
    """Record the values of one message; those for later questions wait for them."""
    await record_ahead(shell, update, context, screening, dict(panel.items))


async def record_ahead(
    shell: Shell,
    update: Update,
    context: Context,
    screening: Screening,
    items: dict[str, Typed],
) -> None:
    """Record answers given ahead, each at its question: now up to the next one not given.

    The others wait beside the conversation and are recorded as their questions come up.
    """
    conversation = shell.conversation(context)
    if conversation.prefill is not None and conversation.prefill.screening_id == screening.id:
        items = {**conversation.prefill.items, **items}
    prefill = Prefill(screening_id=screening.id, items=items)
    await shell.keep(context, conversation.but(phase=Idle(), prefill=prefill))
    lang = shell.lang(update, context)
    before = screening
    screening, lines = await apply_prefills(shell, update, context, screening)
    await notify_review(shell, context, before, screening)
    await shell.show(update, context, screening, "\n".join(lines) or t("saved", lang, echo="—"))
