"""Messages to Telegram through python-telegram-bot's typed methods."""

from __future__ import annotations

from telegram import Bot

from bot.keyboards import Keyboard

__all__ = ["remove_buttons", "send_text"]


async def send_text(bot: Bot, chat_id: int, text: str, markup: Keyboard | None = None) -> None:
    """Send a text message, with its inline keyboard if any.

    Raises:
        telegram.error.TelegramError: Telegram refused the message or could not be reached.
    """
    await bot.send_message(chat_id, text, reply_markup=markup)


async def remove_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """Remove a message's inline keyboard (an edit without ``reply_markup`` removes it).

    Raises:
        telegram.error.TelegramError: Telegram refused the edit (the message is gone, too old,
            or has no keyboard left) or could not be reached.
    """
    await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id)
