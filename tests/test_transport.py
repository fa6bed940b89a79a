"""The bot's transport decodes the Bot API's replies as python-telegram-bot's default does."""

from __future__ import annotations

import json

import pytest
from telegram.error import TelegramError
from telegram.request import BaseRequest

from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN, Settings
from bot.telegram_bot import build_application
from bot.transport import TelegramRequest
from flows import Catalog, Protocol
from storage.memory import InMemoryRepository

REPLIES = [
    b'{"ok":true,"result":true}',
    # A sent message as Telegram returns it: nested objects, non-ASCII text, escapes, numbers.
    json.dumps(
        {
            "ok": True,
            "result": {
                "message_id": 12,
                "date": 1764590000,
                "chat": {"id": -1001234567890, "type": "private"},
                "text": '[S-101] Hb ≥ 9.0 g/dL?\n"quoted" \\ 中文 🩸',
                "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "a:1"}]]},
            },
        }
    ).encode(),
    '{"ok":true,"result":{"text":"µL ≤ 1,2"}}'.encode(),
    b'{"ok":false,"error_code":400,"description":"Bad Request: message is not modified"}',
]


@pytest.mark.parametrize("payload", REPLIES)
def test_replies_decode_as_the_library_decodes_them(payload: bytes) -> None:
    assert TelegramRequest.parse_json_payload(payload) == BaseRequest.parse_json_payload(payload)


def test_invalid_utf8_is_replaced_as_the_library_does() -> None:
    payload = b'{"ok":true,"result":{"text":"caf\xe9"}}'
    decoded = TelegramRequest.parse_json_payload(payload)
    assert decoded == BaseRequest.parse_json_payload(payload)
    assert decoded["result"]["text"] == "caf\ufffd"


def test_a_reply_that_is_not_json_is_the_library_error() -> None:
    with pytest.raises(TelegramError, match="Invalid server response"):
        TelegramRequest.parse_json_payload(b"<html>502 Bad Gateway</html>")


async def test_the_application_talks_to_telegram_through_it(seed: Protocol) -> None:
    service = ScreeningService(InMemoryRepository(), Catalog((seed,)), DEFAULT_CODE_PATTERN)
    app = build_application(service, Settings(bot_token="1:transport", _env_file=None))
    assert isinstance(app.bot.request, TelegramRequest)
