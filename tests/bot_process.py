"""The bot as a child process, and the updates a test sends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class BotProcess:
    """``prescreen run`` in a child process."""

    def __init__(self, tmp_path: Path, base_url: str, db_url: str, *args: str, **env: str) -> None:
        self.env = {
            **os.environ,
            "PRESCREEN_BOT_TOKEN": "123456:PROCESS",
            "PRESCREEN_BASE_URL": base_url,
            "PRESCREEN_DATABASE_URL": db_url,
            "PRESCREEN_LOG_LEVEL": "WARNING",
            "PRESCREEN_TRIALS": "cd19-cart-ball-consolidation",  # /new CODE starts at once
            **env,
        }
        self.args = args
        self.cwd = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "run", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=(self.cwd / f"bot-{id(self)}.log").open("ab"),  # one log per process
        )
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "en"}


def text_update(user_id: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": int(time.time() * 1000) % 10**9,
        "date": 0,
        "text": text,
        "from": _user(user_id),
        "chat": {"id": user_id, "type": "private"},
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"message": message}


def press_update(user_id: int, message: dict[str, Any], label: str) -> dict[str, Any] | None:
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button["text"].startswith(label):
                return {
                    "callback_query": {
                        "id": str(time.time_ns()),
                        "from": _user(user_id),
                        "chat_instance": "1",
                        "message": message,
                        "data": button["callback_data"],
                    }
                }
    return None
