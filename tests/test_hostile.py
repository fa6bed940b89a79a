"""Hostile input through the real Application: forged buttons, groups, other people's screenings.

Every refusal is quiet (nothing recorded, nothing raised) and every redelivered update goes
unanswered. The error handler of the ``world`` fixture fails a test in which a handler raised.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bot.results import Refused
from storage.records import Role, Staff
from tests.bot_fixtures import ALICE, CHEN, BotWorld
from tests.telegram_fake import Chat

BOB = 5005
_ids = itertools.count(10_000_000)


async def tap(chat: Chat, data: str, message: dict[str, Any] | None = None) -> list[str]:
    """A tap with any callback data, on ``message`` (by default the chat's last one)."""
    return await chat.tap(data, message if message is not None else chat.last_message())


def with_button(message: dict[str, Any], data: str) -> dict[str, Any]:
    """``message`` as a client that made up a button for it would present it."""
    forged = {"text": "forged", "callback_data": data}
    return {**message, "reply_markup": {"inline_keyboard": [[forged]]}}


def inaccessible(message: dict[str, Any]) -> dict[str, Any]:
    """The message as Telegram sends it once it no longer shows it to the bot."""
    return {"chat": message["chat"], "message_id": message["message_id"], "date": 0}


async def group_message(world: BotWorld, user: Chat, text: str, chat_id: int) -> None:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "text": text,
        "chat": {"id": chat_id, "type": "group", "title": "Ward 3"},
        "from": user.user,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    await user._process({"update_id": next(_ids), "message": message})


FORGED = [
    "1t|0|0|1",
    "1t|0|0|",
    "1t|7001206864|82498|-1:n",
    "1t|0|0|99",
    "1a|1|4|999:y",
    "1a|1|1|0:o99",
    "1a|1|1|0:q",
    "1p|" + "9" * 30 + "|4|3",
    "1d|1|1|999:a",
    "1g|1|1|9999",
    "1r|1|1|9",
    "1l|0|0|fr",
    "1z|1|1|",
    "1a|1|1",
    "1a|1|1|0:y|extra",
    "1a|-1|1|0:y",
    "a|1|1|0:y",  # the encoding before versions: an old button
    "2a|1|1|0:y",  # a version this release does not write
    "",
    "é" * 32,
]


async def test_forged_button_data_is_refused_quietly(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new H-101")
    question = alice.last_message()
    before = world.repo.find_screening("H-101")
    assert before is not None
    for data in FORGED:
        edits = len(world.api.methods("editMessageReplyMarkup"))
        # On the message it was tapped on (not one of its buttons) and on an old message whose
        # buttons Telegram no longer shows the bot (decoded and checked against the protocol).
        for message in (with_button(question, data), inaccessible(question)):
            assert await tap(alice, data, message) == [], data
            acks = world.api.methods("answerCallbackQuery")
            assert acks[-1].get("text") == "Outdated button: nothing recorded.", data
        assert len(world.api.methods("editMessageReplyMarkup")) == edits, data
    after = world.repo.find_screening("H-101")
    assert after is not None and after.row_version == before.row_version
    assert world.repo.answers(after.id) == []


async def test_a_yes_no_question_takes_no_option_index(world: BotWorld) -> None:
    """``a|…|q:o99`` on a yes/no question used to be recorded as "unknown / pending"."""
    alice = world.chat(ALICE)
    await alice.send("/new H-102")
    s = world.repo.find_screening("H-102")
    assert s is not None
    data = f"1a|{s.id}|{s.row_version}|0:o0"
    assert await tap(alice, data, inaccessible(alice.last_message())) == []
    assert world.repo.answers(s.id) == []


async def test_group_chats_get_one_refusal_and_nothing_is_recorded(world: BotWorld) -> None:
    alice, chen = world.chat(ALICE), world.chat(CHEN, "Chen")
    group = -100123
    await group_message(world, alice, "/new G-101", group)
    await group_message(world, alice, "/cancel", group)
    await group_message(world, chen, "patient withdrew", group)
    to_group = [m["text"] for m in world.api.by_chat.get(group, [])]
    assert to_group == [
        "I work only in a private chat with research staff: screening data has no place in a "
        "group. Please write to me directly."
    ]
    assert world.repo.find_screening("G-101") is None
    assert world.repo.unfinished(ALICE) == []


async def test_an_investigator_cannot_take_over_a_coordinators_screening(world: BotWorld) -> None:
    alice, chen = world.chat(ALICE), world.chat(CHEN, "Dr Chen")
    await alice.send("/new H-103")
    await alice.send("/resume")
    resume_list = alice.last_message()
    # Dr Chen replays Alice's /resume button: he sees the screening, read only.
    await chen.send("/help")
    replayed = resume_list["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    reply = await tap(chen, replayed, with_button(chen.last_message(), replayed))
    assert reply and "Someone else's screening, shown to read" in reply[0]
    assert chen.last_message().get("reply_markup") is None
    staff = world.repo.get_staff(CHEN)
    assert staff is not None and staff.current_screening_id is None
    # Nothing he types reaches Alice's screening; /cancel has nothing to cancel.
    assert await chen.send("/cancel") == [
        "No screening in progress. Start one with /new or continue with /resume."
    ]
    await chen.send("yes")
    s = world.repo.find_screening("H-103")
    assert s is not None and s.unfinished and world.repo.answers(s.id) == []
    # Alice's answer buttons, replayed in his chat, record nothing either.
    first_question = next(
        m for m in reversed(world.api.by_chat[ALICE]) if "Question 1 ·" in m["text"]
    )
    yes = first_question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await tap(chen, yes, with_button(chen.last_message(), yes))
    assert world.repo.answers(s.id) == []


async def test_the_service_enforces_who_may_do_what(world: BotWorld) -> None:
    """The same rules for every entry point, not only for the buttons a screen shows."""
    service, repo = world.service, world.repo
    repo.save_staff(Staff(BOB, "Bob", Role.COORDINATOR))
    protocol = service.catalog.current()[0]
    s = service.begin("H-104", protocol, actor=ALICE)
    assert not isinstance(s, Refused) and hasattr(s, "state")
    for actor in (BOB, CHEN):
        answered = service.answer_value(s, "consent", True, "yes", actor=actor)  # type: ignore[arg-type]
        assert isinstance(answered, Refused) and answered.message.key == "not_owner"
        closed = service.close(s, "cancelled", actor=actor, reason="x")  # type: ignore[arg-type]
        assert isinstance(closed, Refused) and closed.message.key == "not_owner"
    assert repo.answers(s.id) == []  # type: ignore[union-attr]
    # Deciding a criterion left to the investigator takes the role, whoever asks.
    decided = service.decide(s, "i8_2", True, "ok", actor=ALICE)  # type: ignore[arg-type]
    assert isinstance(decided, Refused) and decided.message.key == "decide_role"


async def test_redelivered_updates_get_no_reply(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new H-105")
    calls = len(world.api.calls)
    assert await alice.redeliver() == []
    for text in ("/status", "/help", "/resume", "not a yes or no", "/nonsense"):
        assert await alice.send(text)
        calls = len(world.api.calls)
        assert await alice.redeliver() == [], text
        assert len(world.api.calls) == calls, text
    # A tap, an outdated tap and a forged one: none is acknowledged a second time.
    spent, _ = alice.button("Yes")
    fresh = (alice.press("Yes"), alice.press("Yes", message=spent), tap(alice, "1x|1|1|"))
    for press in (*fresh, alice.press("Yes")):
        await press
        calls = len(world.api.calls)
        assert await alice.redeliver() == []
        assert len(world.api.calls) == calls
