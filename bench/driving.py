"""Driving the seed trial's dialog through a real ``Application``: the script, the updates, the
order of the chats, and the heartbeat that measures the longest event-loop stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from telegram import Update
from telegram.ext import Application

from tests.telegram_fake import FakeBotAPI

# One eligible screening: (kind, argument); ``{code}`` is the chat's screening code.
SCRIPT: list[tuple[str, str]] = [
    ("send", "/new {code}"),
    ("press", "Yes"),
    ("press", "Yes"),
    ("press", "B-ALL, refractory"),
    ("send", "2"),
    ("press", "No"),
    ("press", "No"),
    ("press", "No suitable donor"),
    ("send", "45"),
    ("press", "Female"),
    ("press", "1"),
    ("press", "Yes"),
    ("press", "Yes"),
    ("send", "0.8x ULN"),
    ("send", "60"),
    ("send", "97"),
    ("send", "0.5x ULN"),
    ("send", "30 U/L ULN 40"),
    ("send", "35 U/L ULN 40"),
    ("press", "Yes"),
    ("send", "9.5 g/dL"),
    ("send", "1200/µL"),
    ("send", "150"),
    ("press", "Yes"),
    ("press", "Negative"),
    ("press", "Yes"),
    ("press", "✍ Sign"),
]
ANSWER_STEPS = range(1, len(SCRIPT) - 1)  # the command and the signature are not answers
_ids = itertools.count(1)


def _button_data(message: dict[str, Any], label: str) -> str:
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button["text"].startswith(label):
                return str(button["callback_data"])
    raise AssertionError(f"no button {label!r} in {message.get('text', '')[:200]!r}")


def _update(kind: str, arg: str, user_id: int, last: dict[str, Any] | None) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "en"}
    if kind == "press":
        assert last is not None
        return {
            "update_id": next(_ids),
            "callback_query": {
                "id": str(next(_ids)),
                "from": user,
                "chat_instance": "1",
                "message": last,
                "data": _button_data(last, arg),
            },
        }
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": 0,
        "text": arg,
        "from": user,
        "chat": {"id": user_id, "type": "private"},
    }
    if arg.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(arg.split()[0])}]
    return {"update_id": next(_ids), "message": message}


async def drive(
    app: Application[Any, Any, Any, Any, Any, Any],
    api: FakeBotAPI,
    users: list[int],
    rounds: int = 1,
    first_round: int = 0,
) -> list[tuple[int, float]]:
    """Interleave the chats step by step.

    Returns:
        For each update, its step in :data:`SCRIPT` and its processing time in seconds.
    """
    latencies: list[tuple[int, float]] = []
    processor = app.update_processor
    for r in range(first_round, first_round + rounds):
        for index, (kind, arg) in enumerate(SCRIPT):
            for user in users:
                inbox = api.by_chat.get(user)
                data = _update(
                    kind, arg.format(code=f"S-{user}-{r}"), user, inbox[-1] if inbox else None
                )
                started = time.perf_counter()
                # As polling and the webhook hand an update over: through the application's
                # update processor (python-telegram-bot's default one, one at a time, for the
                # ConversationHandler).
                update = Update.de_json(data, app.bot)
                await processor.process_update(update, app.process_update(update))
                latencies.append((index, time.perf_counter() - started))
                # A real transport waits for the network here, which lets the application's
                # background tasks (PicklePersistence's periodic flush) run between updates.
                await asyncio.sleep(0)
    return latencies


class Heartbeat:
    """The longest time the event loop was blocked, measured, not derived.

    A task wakes up every millisecond and notes how late it woke: while a handler runs without
    awaiting (a database call on the event loop, a pickle flush), it cannot wake at all.
    """

    PERIOD = 0.001

    def __init__(self) -> None:
        self.max_stall_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.max_stall_s = max(self.max_stall_s, time.perf_counter() - before - self.PERIOD)

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


STALLS: list[float] = []
"""The last runs' longest event-loop stalls in seconds (read by :func:`summarise`)."""


async def dialogs(
    app: Application[Any, Any, Any, Any, Any, Any],
    api: FakeBotAPI,
    users: list[int],
    rounds: int,
) -> list[tuple[int, float]]:
    """The chats' screenings, interleaved step by step (:func:`drive`), under a heartbeat.

    Returns:
        For each update, its step in :data:`SCRIPT` and its latency in seconds.
    """
    async with Heartbeat() as beat:
        latencies = await drive(app, api, users, rounds)
    STALLS.append(beat.max_stall_s)
    return latencies
