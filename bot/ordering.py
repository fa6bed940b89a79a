"""Updates processed concurrently across chats and in order within each chat.

python-telegram-bot processes one update at a time by default, so every Bot API round trip of
one coordinator's tap (answering the tap, removing the spent buttons, sending the next
question) holds up every other coordinator: with a 50 ms round trip, the whole bot would
serve about seven answers a second. Its ``concurrent_updates`` setting lifts that, but makes no
promise about the order of two updates from the same chat, and a dialog needs that order (a
typed value must be recorded before the tap that follows it is judged). This processor, plugged
in through python-telegram-bot's own extension point, gives both: updates of different chats
run concurrently, updates of one chat (and of one person) one after the other, in the order
they arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from telegram import Chat, Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["PerChatUpdateProcessor", "ordering_keys"]

Key = tuple[str, int]


def ordering_keys(update: object) -> tuple[Key, ...]:
    """What an update must wait its turn for: its sender, and its chat if that is a group.

    A private chat is its sender's, so the sender's turn covers it. In a group, the chat's data
    is shared by its members and the sender's data by all their chats, so both are taken, the
    chat's first (always in that order, so that two updates never wait for each other).
    """
    if not isinstance(update, Update):
        return ()
    user, chat = update.effective_user, update.effective_chat
    keys: list[Key] = []
    if chat is not None and chat.type != Chat.PRIVATE:
        keys.append(("chat", chat.id))
    if user is not None:
        keys.append(("user", user.id))
    elif chat is not None and not keys:
        keys.append(("chat", chat.id))
    return tuple(keys)


@dataclass(slots=True)
class _Turn:
    """The queue of one chat or person: a FIFO lock, and how many updates hold or want it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Up to ``max_concurrent_updates`` updates at once, one chat's (or person's) at a time.

    ``asyncio.Lock`` wakes its waiters first come, first served, and an update joins its
    queues before it first waits, so a chat's updates run in the order the application handed
    them over. A queue is dropped when no update holds or wants it: memory does not grow with
    the number of chats ever seen.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._turns: dict[Key, _Turn] = {}

    @property
    def queues(self) -> int:
        """How many chats or people have an update being processed or waiting."""
        return len(self._turns)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the update's turn in its chat's queue, process it, let the next one go."""
        keys = ordering_keys(update)
        turns = []
        for key in keys:  # joined before the first wait: that fixes the order
            turn = self._turns.get(key)
            if turn is None:
                turn = self._turns[key] = _Turn()
            turn.users += 1
            turns.append(turn)
        held: list[_Turn] = []
        started = False
        try:
            for turn in turns:
                await turn.lock.acquire()
                held.append(turn)
            started = True
            await coroutine
        finally:
            if not started and asyncio.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting (at shutdown): it never runs
            for turn in reversed(held):
                turn.lock.release()
            for key, turn in zip(keys, turns, strict=True):
                turn.users -= 1
                if turn.users == 0:
                    del self._turns[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
