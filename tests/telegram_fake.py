"""A fake Bot API: a ``BaseRequest`` that answers locally and records every call.

The bot runs through the real python-telegram-bot ``Application``; only the HTTP transport is
replaced, as python-telegram-bot's own test suite does with its offline request.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_USER = {
    "id": 900000001,
    "is_bot": True,
    "first_name": "Prescreen",
    "username": "prescreen_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


class FakeBotAPI(BaseRequest):
    """Answers Bot API methods from memory; ``calls`` holds ``(method, parameters)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []  # messages the bot sent, as Telegram returns them
        self.by_chat: dict[int, list[dict[str, Any]]] = {}  # the same, per chat
        self._by_id: dict[tuple[int, int], dict[str, Any]] = {}  # the same, by (chat, message)
        self._ids = itertools.count(1)
        # Methods Telegram refuses, with its description (``Bad Request: …``).
        self.failures: dict[str, str] = {}

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        """Seconds; irrelevant offline."""
        return 1.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        """Record the call and answer as the Bot API would."""
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        if request_data is not None and request_data.contains_files:
            # (filename, content) of every uploaded file; part names are random
            params["_files"] = [
                (value[0], value[1]) for value in (request_data.multipart_data or {}).values()
            ]
        self.calls.append((name, params))
        if name in self.failures:
            error = {"ok": False, "error_code": 400, "description": self.failures[name]}
            return 400, json.dumps(error).encode()
        # orjson: the fake's own work stands for Telegram's servers', not the bot's, so it is
        # kept small (the benchmarks run the bot against this fake).
        return 200, orjson.dumps({"ok": True, "result": await self.answer(name, params)})

    async def answer(self, name: str, params: dict[str, Any]) -> Any:
        """The result of one call; a subclass may make it wait (a slow network, a held reply)."""
        return self._result(name, params)

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return BOT_USER
        if name == "getUpdates":
            return []
        if name in {"sendMessage", "sendDocument"}:
            message: dict[str, Any] = {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                message["reply_markup"] = _markup(params)
            self.sent.append(message)
            self.by_chat.setdefault(message["chat"]["id"], []).append(message)
            self._by_id[message["chat"]["id"], message["message_id"]] = message
            return message
        if name == "editMessageReplyMarkup" and "message_id" in params:
            # Telegram returns the edited message. The history keeps it as it was sent, so that
            # a test can still tap a spent button to check that it records nothing.
            sent = self._by_id.get((int(params["chat_id"]), int(params["message_id"])))
            if sent is not None:
                edited = {key: value for key, value in sent.items() if key != "reply_markup"}
                edited["edit_date"] = int(time.time())
                if "reply_markup" in params:
                    edited["reply_markup"] = _markup(params)
                return edited
        return True

    def forget(self) -> None:
        """Drop every call and message recorded so far (a long benchmark's memory)."""
        self.calls.clear()
        self.sent.clear()
        self.by_chat.clear()
        self._by_id.clear()

    def methods(self, name: str) -> list[dict[str, Any]]:
        """Parameters of every call of one method."""
        return [p for n, p in self.calls if n == name]


def _markup(params: dict[str, Any]) -> Any:
    """A call's ``reply_markup`` as Telegram returns it (the bot sends it JSON-encoded)."""
    markup = params["reply_markup"]
    return orjson.loads(markup) if isinstance(markup, str) else markup


_update_ids = itertools.count(1)


@dataclass
class Chat:
    """A private chat with the bot: send text, press buttons by label, read replies."""

    app: Application[Any, Any, Any, Any, Any, Any]
    api: FakeBotAPI
    user_id: int
    first_name: str = "Alice"
    language_code: str = "en"
    last_update: dict[str, Any] | None = None
    actions: int = 0
    _seen: int = field(default=0)

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }

    def _inbox(self) -> list[dict[str, Any]]:
        return self.api.by_chat.get(self.user_id, [])

    async def _process(self, data: dict[str, Any]) -> list[str]:
        self.last_update = data
        self.actions += 1
        before = len(self._inbox())
        await self._hand_over(data)
        return [m["text"] for m in self._inbox()[before:]]

    async def _hand_over(self, data: dict[str, Any]) -> None:
        """Process an update as polling and the webhook hand it over: through the update
        processor (which counts the updates being processed), and wait until it is done."""
        update = Update.de_json(data, self.app.bot)
        await self.app.update_processor.process_update(update, self.app.process_update(update))

    async def send(self, text: str) -> list[str]:
        """Type a message; returns the texts the bot sent to this chat in reply."""
        message: dict[str, Any] = {
            "message_id": next(_update_ids),
            "date": int(time.time()),
            "text": text,
            "chat": {"id": self.user_id, "type": "private"},
            "from": self.user,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self._process({"update_id": next(_update_ids), "message": message})

    def button(
        self, label: str, *, message: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], str]:
        """The newest message offering a button whose text starts with ``label``."""
        candidates = [message] if message else reversed(self._inbox())
        for sent in candidates:
            for row in sent.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"].startswith(label):
                        return sent, button["callback_data"]
        raise AssertionError(f"no button {label!r}; last message: {self.last_text()!r}")

    async def press(
        self, label: str, *, message: dict[str, Any] | None = None, inaccessible: bool = False
    ) -> list[str]:
        """Tap a button; returns the texts the bot sent in reply.

        ``inaccessible``: Telegram no longer shows the bot the message (one too old, say), so
        the tap carries only its chat and id, with date 0.
        """
        sent, data = self.button(label, message=message)
        if inaccessible:
            sent = {"chat": sent["chat"], "message_id": sent["message_id"], "date": 0}
        return await self.tap(data, sent)

    async def tap(self, data: str, message: dict[str, Any]) -> list[str]:
        """Tap a button with any callback data on ``message``, as a client would send it."""
        query = {
            "id": str(next(_update_ids)),
            "from": self.user,
            "chat_instance": "1",
            "data": data,
            "message": message,
        }
        return await self._process({"update_id": next(_update_ids), "callback_query": query})

    async def redeliver(self) -> list[str]:
        """Deliver the last update again, as Telegram does after a timeout."""
        assert self.last_update is not None
        before = len(self._inbox())
        await self._hand_over(self.last_update)
        return [m["text"] for m in self._inbox()[before:]]

    def last_text(self) -> str:
        inbox = self._inbox()
        return inbox[-1]["text"] if inbox else ""

    def last_message(self) -> dict[str, Any]:
        return self._inbox()[-1]
