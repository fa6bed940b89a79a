"""What every update passes first and last: the access gate, redeliveries, errors."""

from __future__ import annotations

import logging
import uuid

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.buttons import acknowledge
from bot.conversation import Conversation
from bot.i18n import t
from bot.outgoing import send_text
from bot.shell import Context, Shell, user_data
from flows.text import as_lang
from storage.records import StorageUnavailable

log = logging.getLogger(__name__)


async def gate(shell: Shell, update: Update, context: Context) -> None:
    """Runs first for every update: private chats only, drop redeliveries, refuse strangers."""
    user, chat = update.effective_user, update.effective_chat
    if user is None:
        raise ApplicationHandlerStop
    # One query: the sender, the screening they work on, their conversation, and whether
    # this is a redelivery.
    visitor = await shell.db(shell.repo.visitor, user.id, update.update_id)
    if visitor.seen:
        # Handled before (Telegram redelivers after a timeout): the first delivery got the
        # reply and the tap its acknowledgement, which Telegram refuses a second time.
        log.info("update %s redelivered: ignored", update.update_id)
        raise ApplicationHandlerStop
    if chat is None or chat.type != ChatType.PRIVATE:
        await _refuse_group(shell, update, context)
        await mark_processed(shell, update, context)
        raise ApplicationHandlerStop
    staff = visitor.staff
    if staff is None or not staff.active:
        log.info("update %s from %s, who is not staff: refused", update.update_id, user.id)
        text = t("stranger", shell.lang(update, context), id=user.id)
        if update.callback_query:
            await acknowledge(update.callback_query, text[:200], alert=True)
        else:
            await shell.send(update, context, text)
        await mark_processed(shell, update, context)
        raise ApplicationHandlerStop
    conversation = Conversation.from_json(staff.conversation)
    user_data(context).update(staff=staff, current=visitor.current, conversation=conversation)


async def _refuse_group(shell: Shell, update: Update, context: Context) -> None:
    """Say once per chat that the bot works only in private chats; record nothing.

    In a group every member's messages arrive in one chat: a reason or a code one member
    was asked for could be typed by another, and screening data would be shown to all.
    """
    chat = update.effective_chat
    log.info("update %s from a %s chat: refused", update.update_id, chat and chat.type)
    if update.callback_query is not None:
        await acknowledge(update.callback_query)  # the bot sends no buttons there
        return
    chat_data = context.chat_data
    if chat is None or chat_data is None or chat_data.get("told_private"):
        return
    chat_data["told_private"] = True
    try:
        await send_text(context.bot, chat.id, t("private_only", shell.lang(update, context)))
    except TelegramError:
        log.info("could not tell chat %s that the bot works in private chats", chat.id)


async def mark_processed(shell: Shell, update: Update, context: Context) -> None:
    """Runs last for every update that got this far: a redelivery of it is ignored.

    An update that recorded something claimed its id in that transaction already; this
    covers the others (a question shown again, a hint, a list), whose redelivery would
    otherwise be answered twice.
    """
    if user_data(context).get("claimed") == update.update_id:
        return  # recorded with what it changed, in one transaction
    try:
        await shell.db(shell.repo.mark_processed, update.update_id)
    except StorageUnavailable:
        # The update was answered (an apology, if the database failed it); a redelivery
        # might be answered again, which is better than a second apology now.
        log.warning("could not mark update %s as processed", update.update_id)


async def on_error(update: object, context: Context) -> None:
    """Log the traceback with a reference; apologise to the user with the same reference."""
    ref = uuid.uuid4().hex[:8]
    log.error("update failed (ref %s)", ref, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        lang = as_lang(update.effective_user.language_code if update.effective_user else None)
        # A database that is down or locked is worth saying as such: nothing was recorded,
        # and trying again shortly works (connections are re-established on their own).
        key = "db_unavailable" if isinstance(context.error, StorageUnavailable) else "error"
        try:
            await send_text(context.bot, update.effective_chat.id, t(key, lang, ref=ref))
        except TelegramError:
            log.warning("could not send the apology for ref %s", ref)
