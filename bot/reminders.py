"""Reminders of pending results, sent when due from python-telegram-bot's ``JobQueue``.

A reminder is a notice in the database (``storage``); every bot process looks for due ones
once a minute and sends each that it claims, so a reminder survives a restart and is sent once
even when several processes run.
"""

from __future__ import annotations

import logging

from telegram.error import TelegramError

from bot.callbacks import Action, Callback
from bot.conversation import Conversation
from bot.i18n import t
from bot.keyboards import keyboard, tap
from bot.outgoing import send_text
from bot.shell import Context, Shell
from flows import verdict_of
from flows.dialog import missing
from flows.render import question_label

log = logging.getLogger(__name__)

EVERY_SECONDS = 60
"""How often due reminders are looked for."""


async def send_due_reminders(shell: Shell, context: Context) -> None:
    """Send every reminder that is due and still about an open screening."""
    for notice in await shell.db(shell.repo.due_notices, shell.clock(), "reminder"):
        if not await shell.db(shell.repo.claim_notice, notice.id):
            continue  # another process sends it
        screening = await shell.db(shell.repo.get_screening, notice.screening_id)
        staff = await shell.db(shell.repo.get_staff, notice.telegram_id)
        if screening is None or not screening.unfinished or staff is None or not staff.active:
            continue
        lang = Conversation.from_json(staff.conversation).lang or "en"
        protocol = shell.service.protocol_for(screening)
        awaited = missing(protocol, screening.state.answers, verdict_of(protocol, screening.state))
        if not awaited:
            continue  # the results were entered meanwhile
        labels = ", ".join(question_label(protocol, q, lang) for q in awaited)
        text = t("reminder", lang, code=screening.code, missing=labels)
        button = tap(
            t("b_open", lang, code=screening.code),
            Callback(Action.OPEN, screening.id, screening.row_version),
        )
        try:
            await send_text(context.bot, notice.telegram_id, text, keyboard([[button]]))
        except TelegramError:
            log.warning("could not send reminder %s to %s", notice.id, notice.telegram_id)
