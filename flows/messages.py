"""Messages produced by the engine, as data, rendered in English or Chinese on demand.

The engine returns :class:`Message` values (a key and parameters) rather than strings so that
the bot, the console and the exports can each render them in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flows.catalogue import tr
from flows.text import Lang


@dataclass(frozen=True, slots=True)
class Message:
    """A message key with its parameters."""

    key: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def msg(key: str, **params: object) -> Message:
    """Build a :class:`Message`, converting parameters to strings."""
    return Message(key, MappingProxyType({k: str(v) for k, v in params.items()}))


def render(message: Message, lang: Lang) -> str:
    """Render a message in ``lang``, from :mod:`flows.catalogue`."""
    return tr(message.key, lang, **message.params)
