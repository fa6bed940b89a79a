"""The bot's wording: looked up in the one catalogue, :mod:`flows.catalogue`."""

from __future__ import annotations

from flows.catalogue import tr
from flows.messages import Message, render
from flows.text import Lang

REASONS = ("r_transcription", "r_new_result", "r_source", "r_clarified")


def t(key: str, lang: Lang, **params: object) -> str:
    """The bot's wording for ``key`` in ``lang``, from :mod:`flows.catalogue`."""
    return tr(key, lang, **params)


def say(message: Message, lang: Lang) -> str:
    """Render an engine or service message."""
    return render(message, lang)
