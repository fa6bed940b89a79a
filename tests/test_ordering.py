"""Updates of different chats are processed concurrently, those of one chat in order.

Through the real ``Application`` and its update queue (as polling and the webhook feed it), with
a fake Bot API that can hold one chat's replies back, as a slow network would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from telegram import Update

from bot.ordering import PerChatUpdateProcessor, ordering_keys
from flows import Protocol
from tests.bot_fixtures import ALICE, CHEN, BotWorld, start_world
from tests.telegram_fake import Chat, FakeBotAPI

_ids = itertools.count(50_000)


class HeldBotAPI(FakeBotAPI):
    """A fake Bot API whose messages to some chats, or calls of some methods, wait until they
    are let through."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[int, asyncio.Event] = {}  # by chat: its messages
        self.held_methods: dict[str, asyncio.Event] = {}  # by method: every call
        self.attempts: list[tuple[int, str]] = []  # (chat, text) of every sendMessage begun
        self.begun: list[str] = []  # every call begun, by method
        self.delivered = asyncio.Event()

    async def answer(self, name: str, params: dict[str, Any]) -> Any:
        self.begun.append(name)
        self.delivered.set()
        if name in self.held_methods:
            await self.held_methods[name].wait()
        if name == "sendMessage":
            chat = int(params["chat_id"])
            self.attempts.append((chat, str(params.get("text", ""))))
            if chat in self.held:
                await self.held[chat].wait()
        result = await super().answer(name, params)
        self.delivered.set()
        return result


def _message(user: int, text: str, chat: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "text": text,
        "chat": chat or {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": f"U{user}", "language_code": "en"},
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": next(_ids), "message": message}


def _tap(chat: Chat, label: str) -> dict[str, Any]:
    """A tap on the newest button ``label`` in the chat, as an update (not yet delivered)."""
    message, data = chat.button(label)
    query = {"id": str(next(_ids)), "from": chat.user, "chat_instance": "1", "data": data}
    return {"update_id": next(_ids), "callback_query": {**query, "message": message}}


async def _until(condition: Any, api: HeldBotAPI) -> None:
    """Wait (at most 5 s) until ``condition()`` holds, re-checking after every Bot API call."""

    async def wait() -> None:
        while not condition():
            api.delivered.clear()
            await api.delivered.wait()

    await asyncio.wait_for(wait(), 5)


async def _world(world: BotWorld, seed: Protocol, **settings: Any) -> tuple[BotWorld, HeldBotAPI]:
    """The fixture's bot again, on a fake Bot API that can hold replies, and started."""
    api = HeldBotAPI()
    held = await start_world(world.engine, seed, api=api, **settings)
    await held.app.start()
    return held, api


async def _screening(
    world: BotWorld, seed: Protocol, code: str
) -> tuple[BotWorld, HeldBotAPI, Chat]:
    """The held bot, with Alice's screening ``code`` started at its first question."""
    held, api = await _world(world, seed)
    chat = held.chat(ALICE)
    await chat.send(f"/new {code}")
    return held, api, chat


async def _stop(world: BotWorld) -> None:
    await world.app.update_queue.join()
    await world.app.stop()
    await world.app.shutdown()
    assert world.errors == [], "a handler raised"


async def test_other_chats_are_answered_while_one_waits_for_telegram(
    world: BotWorld, seed: Protocol
) -> None:
    held, api = await _world(world, seed)
    gate = api.held[ALICE] = asyncio.Event()
    queue = held.app.update_queue
    await queue.put(Update.de_json(_message(ALICE, "/help"), held.app.bot))
    await queue.put(Update.de_json(_message(ALICE, "/start"), held.app.bot))
    await queue.put(Update.de_json(_message(CHEN, "/help"), held.app.bot))
    # Chen's reply goes out while Alice's first reply is still on its way...
    await _until(lambda: any(m["chat"]["id"] == CHEN for m in api.sent), api)
    alice = [text for chat, text in api.attempts if chat == ALICE]
    assert len(alice) == 1, "Alice's first update is waiting for Telegram"
    # ...and Alice's second update has not begun: it waits for her first.
    assert not any(m["chat"]["id"] == ALICE for m in api.sent)
    gate.set()
    await queue.join()
    replies = [m["text"] for m in api.sent if m["chat"]["id"] == ALICE]
    assert len(replies) == 2
    assert replies[0] == alice[0], "her replies went out in the order she wrote"
    assert replies[0] != replies[1]
    processor = held.app.update_processor
    assert isinstance(processor, PerChatUpdateProcessor)
    assert processor.queues == 0, "finished chats leave nothing behind"
    await _stop(held)


async def test_one_update_at_a_time_when_configured(world: BotWorld, seed: Protocol) -> None:
    held, api = await _world(world, seed, max_concurrent_updates=1)
    gate = api.held[ALICE] = asyncio.Event()
    queue = held.app.update_queue
    await queue.put(Update.de_json(_message(ALICE, "/help"), held.app.bot))
    await queue.put(Update.de_json(_message(CHEN, "/help"), held.app.bot))
    await _until(lambda: len(api.attempts) == 1, api)
    for _ in range(20):  # give Chen's update every chance to overtake
        await asyncio.sleep(0)
    assert [chat for chat, _ in api.attempts] == [ALICE], "Chen waits behind Alice"
    gate.set()
    await queue.join()
    assert [m["chat"]["id"] for m in api.sent] == [ALICE, CHEN]
    await _stop(held)


async def test_a_tap_and_a_command_right_after_it_run_in_order(
    world: BotWorld, seed: Protocol
) -> None:
    """A coordinator who taps and types faster than the replies arrive: in the order sent."""
    held, api, chat = await _screening(world, seed, "ORD-001")
    press = _tap(chat, "Yes")
    # Telegram is slow to take the tap's answer.
    gate = api.held_methods["answerCallbackQuery"] = asyncio.Event()
    queue = held.app.update_queue
    sent_before = len(api.sent)
    await queue.put(Update.de_json(press, held.app.bot))
    await queue.put(Update.de_json(_message(ALICE, "/status"), held.app.bot))
    # The tap's next question goes out while its answer to Telegram is still on its way, but
    # the tap is not done until that answer is: /status waits for it.
    await _until(lambda: len(api.sent) > sent_before, api)
    for _ in range(20):  # give /status every chance to overtake
        await asyncio.sleep(0)
    assert "answerCallbackQuery" in api.begun and not gate.is_set()
    assert len(api.sent) == sent_before + 1, "/status waits for the tap"
    gate.set()
    await queue.join()
    kinds = [e.kind for e in held.repo.audit_events("ORD-001")]
    assert kinds.count("answer_recorded") == 1
    # /status came second, so it shows the question after the one the tap answered.
    replies = [m["text"] for m in api.sent[sent_before:]]
    assert len(replies) == 2
    assert "Question 2 ·" in replies[0] and "Question 2 ·" in replies[1]
    await _stop(held)


async def test_a_tap_is_recorded_and_followed_while_telegram_takes_its_answer(
    world: BotWorld, seed: Protocol
) -> None:
    """Answering the tap and removing its buttons do not hold up the next question."""
    held, api, chat = await _screening(world, seed, "ORD-002")
    answered = api.held_methods["answerCallbackQuery"] = asyncio.Event()
    removed = api.held_methods["editMessageReplyMarkup"] = asyncio.Event()
    press = _tap(chat, "Yes")
    begun = len(api.begun)
    await held.app.update_queue.put(Update.de_json(press, held.app.bot))
    await _until(lambda: "Question 2 ·" in chat.last_text(), api)
    # All three were sent together; the first two are still on their way.
    assert sorted(api.begun[begun:]) == [
        "answerCallbackQuery",
        "editMessageReplyMarkup",
        "sendMessage",
    ]
    assert not answered.is_set() and not removed.is_set()
    kinds = [e.kind for e in held.repo.audit_events("ORD-002")]
    assert kinds.count("answer_recorded") == 1
    answered.set()
    removed.set()
    await _stop(held)


def test_ordering_keys(world: BotWorld) -> None:
    bot = world.app.bot
    private = Update.de_json(_message(ALICE, "hi"), bot)
    assert ordering_keys(private) == (("user", ALICE),)
    group = Update.de_json(_message(ALICE, "hi", {"id": -5, "type": "group"}), bot)
    assert ordering_keys(group) == (("chat", -5), ("user", ALICE))
    assert ordering_keys(object()) == ()


@pytest.mark.parametrize("value", [0, -1])
def test_max_concurrent_updates_must_be_positive(value: int) -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    with pytest.raises(ValidationError):
        Settings(max_concurrent_updates=value, _env_file=None)
