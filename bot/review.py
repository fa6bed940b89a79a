"""Investigators: the review screen, and a decision recorded with its reason."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.access import can_decide
from bot.conversation import Reviewing
from bot.i18n import t
from bot.outcomes import after
from bot.outgoing import send_text
from bot.results import Recorded
from bot.screens import review_screen
from bot.shell import Context, Shell
from flows import Decide, Decision
from storage.records import Screening

log = logging.getLogger(__name__)


async def show_review(shell: Shell, update: Update, context: Context, screening: Screening) -> None:
    """The screening as an investigator decides on it."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    if not can_decide(staff, screening):
        await shell.send(update, context, t("role_needed", lang, role="investigator"))
        return
    # Typed text is not a decision: it is answered with a pointer to the buttons.
    conversation = shell.conversation(context)
    await shell.keep(context, conversation.but(phase=Reviewing(screening_id=screening.id)))
    text, markup = review_screen(shell.service.protocol_for(screening), screening, lang)
    notified = await shell.notified(screening, lang)
    await shell.send(update, context, f"{text}\n{notified}" if notified else text, markup)


async def decide(
    shell: Shell,
    update: Update,
    context: Context,
    screening: Screening,
    criterion_id: str,
    approve: bool,
    reason: str,
) -> None:
    """Record an investigator's decision and tell the coordinator."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    event = Decide(Decision(criterion_id, approve, reason))
    planned = shell.service.plan(
        screening, event, actor=staff.telegram_id, reason=reason, staff=staff
    )
    outcome = await shell.record(planned, update.update_id)
    if not isinstance(outcome, Recorded):
        await after(shell, update, context, outcome, screening=screening)
        return
    number = shell.service.protocol_for(screening).criteria_by_id[criterion_id].number
    await shell.send(update, context, t("decided", lang, code=screening.code))
    try:
        await send_text(
            context.bot,
            screening.created_by,
            t(
                "notify_decided",
                "en",
                name=staff.display_name,
                code=screening.code,
                number=number,
                verdict=t("approved" if approve else "rejected", "en"),
                reason=reason,
            ),
        )
    except TelegramError:
        log.warning("could not notify coordinator %s", screening.created_by)
    await show_review(shell, update, context, outcome.screening)
