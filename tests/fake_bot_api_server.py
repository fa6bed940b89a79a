"""A fake Bot API over HTTP on loopback, for running the bot as a real process.

It answers the methods the bot uses, queues updates for ``getUpdates`` (long polling, with
Telegram's offset confirmation), and records what the bot sends.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tests.telegram_fake import BOT_USER


class _Server(ThreadingHTTPServer):
    # The bots under test open many connections at once; the default backlog of 5 refuses some
    # of them when the machine is busy (several test workers), which a bot sees as a network
    # error that a real Bot API would not cause.
    request_queue_size = 256
    daemon_threads = True


class FakeBotAPIServer:
    """Start with :meth:`start`; point the bot's base URL at :attr:`base_url`."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self.sent: dict[int, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length).decode()
                kind = self.headers.get("content-type", "")
                params: dict[str, Any] = (
                    json.loads(body)
                    if "json" in kind and body
                    else {k: _maybe_json(v) for k, v in parse_qsl(body)}
                )
                method = self.path.rsplit("/", 1)[-1]
                result = server.handle(method, params)
                payload = json.dumps({"ok": True, "result": result}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot was killed while waiting for this answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bot"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the Bot API -----------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append((method, params))
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "getMe":
            return BOT_USER
        if method == "sendMessage":
            chat_id = int(params["chat_id"])
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            with self._lock:
                self.sent.setdefault(chat_id, []).append(message)
                self._lock.notify_all()
            return message
        return True

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)
        with self._lock:
            # Telegram forgets the updates below the offset: they were confirmed.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            return list(self._updates)

    # --- the test's side -------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update (its id is assigned here); returns the id."""
        with self._lock:
            update_id = next(self._ids)
            self._updates.append({**update, "update_id": update_id})
            self._lock.notify_all()
            return update_id

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.sent.get(chat_id, []))

    def wait_for_message(self, chat_id: int, count: int, timeout: float) -> bool:
        """Wait until the chat has more than ``count`` messages."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.sent.get(chat_id, [])) <= count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
