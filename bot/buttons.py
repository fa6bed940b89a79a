"""Inline buttons: a tap is checked like typed text, then acted on."""

from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, Update
from telegram import Message as TelegramMessage
from telegram.error import TelegramError

from bot.access import can_access, can_decide, can_work_on
from bot.callbacks import Action, Callback, decode
from bot.commands import ask_code, begin_together, trial_chooser
from bot.conversation import ChoosingTrial, Idle
from bot.i18n import t
from bot.outgoing import remove_buttons
from bot.review import show_review
from bot.screens import fits, screen
from bot.shell import Context, Shell
from bot.taps import Tap, act
from flows.messages import msg, render
from flows.text import Lang, as_lang

log = logging.getLogger(__name__)


async def on_button(shell: Shell, update: Update, context: Context) -> None:
    """Every inline button: checked against the screening's current revision first.

    Button data comes from the client and is checked like typed text: it must be one of the
    buttons of the message it was tapped on, decode to a known action of this release whose
    indices exist, and concern a screening this person may act on. Anything else is refused as
    outdated, quietly, with nothing recorded.
    """
    query = update.callback_query
    assert query is not None
    lang, staff = shell.lang(update, context), shell.staff(context)
    data = decode(query.data) if offered(query) else None
    if data is None:
        await refuse_tap(query, lang, "not a button of its message")
        return
    if data.action is Action.LANGUAGE:
        chosen = as_lang(data.arg)
        await shell.keep(context, shell.conversation(context).but(lang=chosen))
        await acknowledge(query)
        await shell.send(update, context, t("language_set", chosen))
        return
    if data.action is Action.TRIAL:
        await choose_trials(shell, update, context, data)
        return
    screening = await shell.screening(context, data.screening_id)
    if screening is None or not can_access(staff, screening):
        log.warning("tap %r by %s refused: screening not visible", query.data, staff.telegram_id)
        await acknowledge(query, t("not_yours", lang, code="?"), alert=True)
        return
    if not fits(shell.service.protocol_for(screening), data):
        await refuse_tap(query, lang, "index outside the protocol")
        return
    if data.action in {Action.OPEN, Action.REVIEW}:  # opening a screening: any revision
        await acknowledge(query)
        if data.action is Action.REVIEW:
            await show_review(shell, update, context, screening)
        elif can_work_on(staff, screening):
            await shell.db(shell.repo.set_current_screening, staff.telegram_id, screening.id)
            await shell.show(update, context, screening)
        else:  # someone else's: to read, not to answer
            text, _ = screen(shell.service, screening, lang)
            await shell.send(update, context, t("view_only", lang) + "\n\n" + text)
        return
    if screening.row_version != data.revision or not screening.unfinished:
        if await shell.db(shell.repo.seen_update, update.update_id):
            # This very tap was just recorded by another process (a redelivery raced the
            # first delivery): it is not outdated, it is done, and was acknowledged there.
            return
        await acknowledge(query, t("outdated_short", lang))
        await shell.show(update, context, screening, t("outdated", lang, code=screening.code))
        return
    if data.action is Action.DECIDE:
        if not can_decide(staff, screening):
            await refuse_tap(query, lang, "decision by someone without the role")
            return
    elif not can_work_on(staff, screening):
        await refuse_tap(query, lang, "someone else's screening")
        await shell.send(update, context, render(msg("not_owner", code=screening.code), lang))
        return
    elif screening.id != staff.current_screening_id:
        # A button left in the chat from a screening put aside: acting on it would change a
        # screening the coordinator is not looking at.
        await acknowledge(query, t("outdated_short", lang))
        await shell.send(update, context, t("other_screening", lang, code=screening.code))
        return
    # Answering the tap and removing the spent buttons need nothing from the database, so
    # they do not wait for each other or for the next question: all three travel to
    # Telegram together (they start at the handler's first wait, when the answer is
    # recorded), and the next question arrives one round trip after the tap, not three.
    spent = asyncio.gather(acknowledge(query), remove_keyboard(query))
    try:
        await act(Tap(shell, update, context, screening, data))
    finally:
        await spent


async def choose_trials(shell: Shell, update: Update, context: Context, data: Callback) -> None:
    """Tick or untick a trial of a new screening, or start it on the ticked ones."""
    query = update.callback_query
    assert query is not None
    lang = shell.lang(update, context)
    trials = shell.service.catalog.current()
    if data.arg != "go" and data.index() >= len(trials):
        await refuse_tap(query, lang, "no such trial")
        return
    phase = shell.conversation(context).phase
    if not isinstance(phase, ChoosingTrial):  # a chooser from before: every trial ticked
        phase = ChoosingTrial()
    if data.arg != "go":
        toggled = {trials[data.index()].id} ^ set(phase.left_out)
        phase = phase.model_copy(update={"left_out": tuple(sorted(toggled))})
        await acknowledge(query)
        await shell.keep(context, shell.conversation(context).but(phase=phase))
        text = t("choose_trials", lang)
        await shell.send(update, context, text, trial_chooser(trials, phase, lang))
        return
    picked = [p for p in trials if p.id not in phase.left_out]
    if not picked:
        await acknowledge(query, t("no_trial_ticked", lang), alert=True)
        return
    await acknowledge(query)
    if phase.code:  # /new CODE: the code was given
        await shell.keep(context, shell.conversation(context).but(phase=Idle()))
        await begin_together(shell, update, context, picked, phase.code)
    else:
        await ask_code(shell, update, context, *picked)


async def refuse_tap(query: CallbackQuery, lang: Lang, why: str) -> None:
    """Refuse a tap that is not a live button of this person's: stop its spinner, log it."""
    log.warning("tap %r by %s refused: %s", query.data, query.from_user.id, why)
    await acknowledge(query, t("outdated_short", lang))


def offered(query: CallbackQuery) -> bool:
    """Whether the tapped data is one of the buttons of the message it was tapped on.

    Telegram sends the message as it stands, buttons included, so a tap whose data is not
    among them was made up by the client. When Telegram no longer shows the bot the message (an
    old one), the revision and ownership checks alone decide.
    """
    message = query.message
    if message is None:  # inline mode, which the bot does not use
        return False
    if not isinstance(message, TelegramMessage) or not message.is_accessible:
        return True
    markup = message.reply_markup
    return markup is not None and any(
        button.callback_data == query.data for row in markup.inline_keyboard for button in row
    )


async def acknowledge(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Tell Telegram the tap was received (the app stops its spinner), with a short notice.

    The tap is handled whether or not this succeeds: a tap delivered late (after an outage)
    has an expired query, which Telegram refuses to answer, and that is no error of the tap.
    """
    try:
        await query.answer(text, show_alert=True if alert else None)
    except TelegramError as exc:
        log.info("could not acknowledge tap %s: %s", query.id, exc)


async def remove_keyboard(query: CallbackQuery) -> None:
    """Remove a tapped message's buttons (they are spent); a message gone meanwhile is fine."""
    message = query.message
    if message is None:  # a message sent in inline mode, which the bot does not use
        return
    try:
        # Telegram refuses the edit of a message too old to change (an inaccessible one).
        await remove_buttons(query.get_bot(), message.chat.id, message.message_id)
    except TelegramError:
        log.debug("could not remove the keyboard of message %s", query.message)
