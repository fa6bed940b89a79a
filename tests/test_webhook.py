"""Webhook mode: the real updater's web server on loopback, with the secret token checked."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from pathlib import Path

import httpx
import pytest

from bot import runner
from bot.runner import NotConfigured, run, webhook_path
from bot.settings import Settings
from tests.bot_fixtures import ALICE, BotWorld


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def update(update_id: int, text: str) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "text": text,
            "chat": {"id": ALICE, "type": "private"},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def test_webhook_checks_the_secret_token(world: BotWorld) -> None:
    port = free_port()
    updater = world.app.updater
    assert updater is not None
    await updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="telegram", secret_token="s3cret-token"
    )
    await world.app.start()
    try:
        url = f"http://127.0.0.1:{port}/telegram"
        async with httpx.AsyncClient(timeout=5) as client:
            body = json.dumps(update(90001, "/new S-900"))
            headers = {"content-type": "application/json"}
            missing = await client.post(url, content=body, headers=headers)
            wrong = await client.post(
                url, content=body, headers={**headers, "X-Telegram-Bot-Api-Secret-Token": "guess"}
            )
            right = await client.post(
                url,
                content=body,
                headers={**headers, "X-Telegram-Bot-Api-Secret-Token": "s3cret-token"},
            )
        assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
        for _ in range(100):  # the update queue is processed in the background
            if world.repo.find_screening("S-900") is not None:
                break

            await asyncio.sleep(0.02)
        assert world.repo.find_screening("S-900") is not None
    finally:
        await updater.stop()
        await world.app.stop()


def test_run_refuses_without_token_or_webhook_settings() -> None:
    with pytest.raises(NotConfigured, match="@BotFather"):
        run(Settings(_env_file=None))
    with pytest.raises(NotConfigured, match="PRESCREEN_WEBHOOK_URL"):
        run(Settings(bot_token="1:x", _env_file=None), webhook=True)
    assert (
        webhook_path(Settings(webhook_url="https://bot.example.org/tg/hook", _env_file=None))
        == "tg/hook"
    )


def test_serving_tunes_the_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By the time the bot serves, what start-up loaded is frozen and collections are rarer."""
    seen: list[tuple[tuple[int, int, int], int]] = []

    def serve(app: object, settings: Settings, *, webhook: bool) -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    async def telegram_answers(settings: Settings) -> None:
        pass  # no network in tests: start-up's getMe is taken as answered

    before = gc.get_threshold()
    monkeypatch.setattr(runner, "_serve", serve)
    monkeypatch.setattr(runner, "check_telegram", telegram_answers)
    settings = Settings(
        bot_token="1:gc", database_url=f"sqlite:///{tmp_path / 'gc.sqlite3'}", _env_file=None
    )
    try:
        run(settings)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    [(threshold, frozen)] = seen
    assert threshold == runner.GC_THRESHOLDS != before
    assert frozen > 0
