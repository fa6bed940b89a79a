"""Running the bot: polling, or a webhook server (several processes can share PostgreSQL)."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import nullcontext
from typing import Any, Final
from urllib.parse import urlparse

from telegram import Bot, Update
from telegram.ext import Application

from bot.application import build_application
from bot.container import build
from bot.service import ScreeningService
from bot.settings import Settings
from storage.db import safe_url
from storage.records import StorageUnavailable

log = logging.getLogger(__name__)


# The collector's thresholds while serving. Every update and every Bot API reply becomes
# thousands of short-lived objects, nearly all freed at once by reference counting; with the
# default thresholds full collections of the whole heap came often enough to show in the
# slowest answers (bench.e2e), and memory stays flat with these (bench.memory).
GC_THRESHOLDS: Final = (50_000, 10, 10)


def tune_garbage_collector() -> None:
    """Set the collector up for serving; call once, when everything is loaded.

    What exists by then (modules, the protocols, the application) lives as long as the
    process, so it is frozen: no later collection scans it again.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class NotConfigured(RuntimeError):
    """A setting needed to run is missing."""


def configure_logging(level: str) -> None:
    """Log at ``level``; keep HTTP client logs quiet because their URLs contain the token."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # transitions logs every transition at INFO: one line per answer, which says nothing the
    # audit trail does not, so it speaks only of problems.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def webhook_path(settings: Settings) -> str:
    """The URL path the webhook listens on: the path of ``webhook_url``."""
    assert settings.webhook_url is not None
    return urlparse(settings.webhook_url).path.strip("/") or "telegram"


def run(settings: Settings, *, webhook: bool = False) -> None:
    """Run the bot until interrupted.

    Raises:
        NotConfigured: No token, or webhook mode without its URL and secret.
    """
    from bot.application import MISSING_TOKEN

    if settings.bot_token is None:
        raise NotConfigured(MISSING_TOKEN)
    if webhook and (settings.webhook_url is None or settings.webhook_secret is None):
        raise NotConfigured(
            "Webhook mode needs PRESCREEN_WEBHOOK_URL (the public https URL "
            "Telegram posts to) and PRESCREEN_WEBHOOK_SECRET (any random "
            "string; Telegram sends it back in a header that is checked)."
        )
    configure_logging(settings.log_level)
    # Telegram is asked first, so that a wrong token or no network creates no database.
    asyncio.run(check_telegram(settings))
    try:
        container = build(settings, serving=True)
    except StorageUnavailable as exc:
        url = safe_url(settings.database_url)
        raise NotConfigured(f"cannot reach the database {url}: {exc}") from exc
    except ValueError as exc:  # an invalid protocol file, or an unknown trial to offer
        raise NotConfigured(" ".join(str(exc).split())) from exc
    service = ScreeningService(container.repo, container.catalog, settings.code_pattern)
    app = build_application(service, settings)
    log.info("serving %s", ", ".join(p.label for p in container.catalog.current()))
    tune_garbage_collector()
    with container.checkpointer or nullcontext():
        _serve(app, settings, webhook=webhook)


async def check_telegram(settings: Settings) -> None:
    """Ask Telegram who the bot is (``getMe``), as the application will at start.

    Raises:
        telegram.error.InvalidToken: Telegram rejected the token.
        telegram.error.NetworkError: Telegram could not be reached.
    """
    assert settings.bot_token is not None
    bot = Bot(
        settings.bot_token.get_secret_value(),
        base_url=settings.base_url,
        base_file_url=settings.base_file_url,
    )
    async with bot:  # initialize() calls getMe; leaving closes the connection pool
        log.info("connected to Telegram as @%s", bot.username)


def _serve(
    app: Application[Any, Any, Any, Any, Any, Any], settings: Settings, *, webhook: bool
) -> None:
    if webhook:
        assert settings.webhook_secret is not None
        app.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=webhook_path(settings),
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
