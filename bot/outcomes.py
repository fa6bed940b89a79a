"""What the user is told after the service has acted: recorded, asked again, held, refused.

A value the service wants confirmed, or given a reason for, is held in the chat's
:class:`bot.conversation.Conversation` as the parsed value, and recorded from there.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.access import can_access
from bot.callbacks import Action, Callback
from bot.conversation import CHECKLIST_MARK, ChoosingReason, Confirming, Conversation, Held, Idle
from bot.i18n import t
from bot.keyboards import keyboard, tap
from bot.outgoing import send_text
from bot.passes import advance, members, reasons_of, to_show
from bot.results import (
    AlreadyProcessed,
    ConfirmFirst,
    Conflict,
    NeedsReason,
    Outcome,
    Reask,
    Recorded,
    Refused,
)
from bot.screens import reason_buttons, review_screen
from bot.shell import Context, Shell, clip, user_data
from flows import Status
from flows.messages import render
from flows.render import trial_standing
from flows.showing import answer_text
from storage.records import Role, Screening

log = logging.getLogger(__name__)


async def after(
    shell: Shell,
    update: Update,
    context: Context,
    outcome: Outcome,
    *,
    screening: Screening,
    raw: str = "",
    shown: str | None = None,
    echo_prefix: str = "",
) -> None:
    """Tell the user what happened to their answer and show what comes next.

    Args:
        shell: The handlers' shared parts.
        update: The update that caused ``outcome``.
        context: Its context.
        outcome: What the service did.
        screening: The screening as it was before.
        raw: The answer as typed (or ``[tap] label``), kept with a value that is held.
        shown: The value as shown back when it was read, kept with it if held again.
        echo_prefix: A first line (the tapped answer, shown back).
    """
    if not isinstance(outcome, Recorded | AlreadyProcessed) and await shell.db(
        shell.repo.seen_update, update.update_id
    ):
        # A redelivery of an update another process has just recorded, read after that
        # write: its hint, prompt or conflict would answer a question already answered.
        return
    lang = shell.lang(update, context)
    conversation = shell.conversation(context)
    match outcome:
        case Recorded(screening=stored, echo=echo):
            user_data(context)["claimed"] = update.update_id
            lines = [echo_prefix] if echo_prefix else []
            if echo is not None:
                lines.append(t("saved", lang, echo=render(echo, lang)))
            stored, more = await apply_prefills(shell, update, context, stored)
            lines += more
            await notify_review(shell, context, screening, stored)
            stored, more = await move_pass(shell, update, context, stored)
            lines += more
            await shell.show(update, context, stored, "\n".join(lines))
        case Reask(hint=hint):
            await shell.send(update, context, render(hint, lang))
        case ConfirmFirst(question_id=qid, parsed=parsed):
            assert parsed.confirm is not None
            held = _held(screening, qid, parsed.value, raw, render(parsed.echo, lang))
            await shell.keep(context, conversation.but(phase=Confirming(held=held)))
            sid, rev = screening.id, screening.row_version
            markup = keyboard(
                [
                    [
                        tap(t("b_record", lang), Callback(Action.RECORD, sid, rev, "one")),
                        tap(t("b_retype", lang), Callback(Action.RETYPE, sid, rev)),
                    ]
                ]
            )
            question = render(parsed.confirm, lang)
            await shell.send(update, context, t("confirm_value", lang, question=question), markup)
        case NeedsReason(question_id=qid, previous=previous, value=value, echo=echo):
            protocol = shell.service.protocol_for(screening)
            held = _held(screening, qid, value, raw, render(echo, lang) if echo else shown)
            await shell.keep(context, conversation.but(phase=ChoosingReason(held=held)))
            text = t(
                "reason_ask",
                lang,
                question=protocol.questions_by_id[qid].label.get(lang),
                old=answer_text(protocol, qid, previous, lang),
                new=answer_text(protocol, qid, value, lang),
            )
            await shell.send(update, context, text, reason_buttons(screening, lang))
        case Refused(message=message, screening=current):
            await shell.show(update, context, current, render(message, lang))
        case Conflict(screening=current):
            text = t("changed_elsewhere", lang, code=current.code)
            await shell.show(update, context, current, text)
        case AlreadyProcessed():
            pass


def _held(screening: Screening, qid: str, value: object, raw: str, echo: str | None) -> Held:
    return Held(
        screening_id=screening.id,
        revision=screening.row_version,
        question_id=qid,
        value=value,
        raw=raw,
        echo=echo,
    )


async def answer_held(
    shell: Shell,
    update: Update,
    context: Context,
    screening: Screening,
    held: Held,
    reason: str | None,
) -> None:
    """Record a value that waited for confirmation or for a reason for change."""
    await shell.keep(context, shell.conversation(context).but(phase=Idle()))
    lang = shell.lang(update, context)
    planned = shell.service.plan_value(
        screening,
        held.question_id,
        held.value,
        held.raw,
        actor=shell.staff(context).telegram_id,
        reason=reason,
    )
    outcome = await shell.record(planned, update.update_id)
    prefix = t("saved", lang, echo=held.echo) if held.echo else ""
    await after(
        shell,
        update,
        context,
        outcome,
        screening=screening,
        raw=held.raw,
        shown=held.echo,
        echo_prefix=prefix,
    )


async def apply_prefills(
    shell: Shell, update: Update, context: Context, screening: Screening
) -> tuple[Screening, list[str]]:
    """Record values typed earlier in one message as their questions come up."""
    conversation = shell.conversation(context)
    prefill = conversation.prefill
    lines: list[str] = []
    if prefill is None or prefill.screening_id != screening.id:
        return screening, lines
    lang = shell.lang(update, context)
    protocol = shell.service.protocol_for(screening)
    actor = shell.staff(context).telegram_id
    done: list[str] = []
    # Each value at its own question, as if typed there: the engine on the loop, the step
    # stored in a database thread, one transaction each.
    while (typed := prefill.items.get(screening.state.at)) is not None and (
        screening.state.at not in done
    ):
        qid = screening.state.at
        planned = shell.service.plan_value(screening, qid, typed.value, typed.raw, actor=actor)
        outcome = await shell.record(planned, None)
        if not isinstance(outcome, Recorded):
            break
        screening = outcome.screening
        done.append(qid)
    for qid in done:
        typed = prefill.items[qid]
        label = protocol.questions_by_id[qid].label.get(lang)
        if typed.raw.startswith(CHECKLIST_MARK):
            lines.append(t("checklist_recorded", lang, label=label, answer=typed.echo))
        else:
            lines.append(t("prefilled", lang, label=label, echo=typed.echo))
    waiting = {qid: typed for qid, typed in prefill.items.items() if qid not in done}
    left = prefill.model_copy(update={"items": waiting}) if waiting else None
    await shell.keep(context, conversation.but(prefill=left))
    return screening, lines


async def move_pass(
    shell: Shell, update: Update, context: Context, screening: Screening
) -> tuple[Screening, list[str]]:
    """After an answer in one trial of a pass, move every open trial on with the shared answers.

    Returns:
        The screening to show next (this one while it is open, else the first trial still
        asking) and one line with each trial's standing.
    """
    if screening.pass_code is None:
        return screening, []
    lang, actor = shell.lang(update, context), shell.staff(context).telegram_id
    trials = await shell.db(members, shell.service, screening)
    reasons = reasons_of(await shell.db(shell.repo.answers, screening.id))
    # The engine plans each step here, on the event loop; each is stored in a database thread.
    steps = advance(shell.service, screening, trials, reasons, actor)
    stored: Outcome | None = None
    try:
        while True:
            stored = await shell.record(steps.send(stored), None)
    except StopIteration as done:
        moved: list[Screening] = done.value
    for before, after in zip(trials, moved, strict=True):
        if after is not before:
            await notify_review(shell, context, before, after)
    trials, shown = moved, to_show(moved, screening)
    if shown.id != screening.id:
        await shell.db(shell.repo.set_current_screening, actor, shown.id)
        user_data(context)["current"] = shown
    standing = " · ".join(
        trial_standing(shell.service.protocol_for(t), t.state, lang) for t in trials
    )
    lines = [standing]
    if all(t.state.finished for t in trials) and sum(t.unfinished for t in trials) > 1:
        lines.append(t("pass_decided", lang))
    return shown, lines


async def notify_review(
    shell: Shell, context: Context, before: Screening, after: Screening
) -> None:
    """Ask the investigators when a screening starts waiting for their decision.

    The message shows the deciding values with Approve and Reject buttons, so that the decision
    can be taken from the notification; who was asked, and when, is kept with the screening.
    """
    if after.status != Status.NEEDS_REVIEW.value or before.status == after.status:
        return
    protocol = shell.service.protocol_for(after)
    for member in await shell.db(shell.repo.list_staff):
        if member.role is not Role.INVESTIGATOR or not member.active:
            continue
        if not can_access(member, after):
            continue
        lang = Conversation.from_json(member.conversation).lang or "en"
        screen, markup = review_screen(protocol, after, lang)
        text = t("notify_review_full", lang, code=after.code, screen=screen)
        try:
            await send_text(context.bot, member.telegram_id, clip(text), markup)
        except TelegramError:
            log.warning("could not notify investigator %s", member.telegram_id)
            continue
        await shell.db(
            shell.repo.add_notice, after.id, member.telegram_id, "review", shell.clock(), sent=True
        )
