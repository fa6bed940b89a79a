"""Messages to Telegram whose reply the bot does not read.

python-telegram-bot's typed methods (``send_message``, ``edit_message_reply_markup``) turn
Telegram's reply into a ``Message``: the message as sent, with its keyboard, sender and chat,
each a library object. The bot never reads that reply, and building it costs about 90 µs for a
question sent with its keyboard and 60 µs for the edit that removes spent buttons: about a
sixth of an answer's time end to end (``bench.e2e``).
``Bot.do_api_request`` makes the same call through the same transport, rate limiter, error
handling and ``None``-dropping of parameters, and returns the reply as decoded JSON.

It warns that a typed method exists for these endpoints: the choice here is deliberate, so
:func:`expect_untyped_calls` silences exactly those warnings (and no others).
"""

from __future__ import annotations

import warnings
from typing import Final

from telegram import Bot
from telegram.warnings import PTBUserWarning

from bot.keyboards import Keyboard

__all__ = ["expect_untyped_calls", "remove_buttons", "send_text"]

SEND_MESSAGE: Final = "sendMessage"
EDIT_REPLY_MARKUP: Final = "editMessageReplyMarkup"


def expect_untyped_calls() -> None:
    """Silence ``do_api_request``'s warning for the two endpoints this module calls.

    Python keeps one copy of an identical filter, so calling this again adds nothing.
    """
    warnings.filterwarnings(
        "ignore",
        message=rf"Please use 'Bot\.({SEND_MESSAGE}|{EDIT_REPLY_MARKUP})' instead",
        category=PTBUserWarning,
    )


async def send_text(bot: Bot, chat_id: int, text: str, markup: Keyboard | None = None) -> None:
    """Send a text message, with its inline keyboard if any.

    Raises:
        telegram.error.TelegramError: Telegram refused the message or could not be reached
            (as ``Bot.send_message`` raises).
    """
    await bot.do_api_request(
        SEND_MESSAGE, {"chat_id": chat_id, "text": text, "reply_markup": markup}
    )


async def remove_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """Remove a message's inline keyboard (an edit without ``reply_markup`` removes it).

    Raises:
        telegram.error.TelegramError: Telegram refused the edit (the message is gone, too old,
            or has no keyboard left) or could not be reached.
    """
    await bot.do_api_request(EDIT_REPLY_MARKUP, {"chat_id": chat_id, "message_id": message_id})
