"""Inline keyboards: python-telegram-bot's button and markup objects, built in one place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import Callback

__all__ = ["Button", "Keyboard", "button", "keyboard", "tap"]

Button = InlineKeyboardButton
Keyboard = InlineKeyboardMarkup

# A label is cut to this many characters.
MAX_LABEL = 64


def button(text: str, data: str) -> Button:
    """A button labelled ``text`` (cut to ``MAX_LABEL`` characters) that sends back ``data``."""
    return InlineKeyboardButton(text[:MAX_LABEL], callback_data=data)


def keyboard(rows: Iterable[Sequence[Button]]) -> Keyboard:
    """An inline keyboard of ``rows``."""
    return InlineKeyboardMarkup([list(row) for row in rows])


def tap(text: str, callback: Callback) -> Button:
    """A button labelled ``text`` that sends ``callback`` back when tapped."""
    return button(text, callback.encode())
