"""The python-telegram-bot application: every handler registered here, in one place."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import partial
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import commands
from bot.buttons import on_button
from bot.gate import gate, mark_processed, on_error
from bot.ordering import PerChatUpdateProcessor
from bot.reminders import EVERY_SECONDS, send_due_reminders
from bot.service import ScreeningService
from bot.settings import Settings
from bot.shell import Context, Shell
from bot.typed import on_text
from flows.catalogue import tr
from flows.text import LANGUAGES
from storage.clock import utc_now

App = Application[Any, Any, Any, Any, Any, Any]
Handler = Callable[[Shell, Update, Context], Coroutine[Any, Any, None]]

MISSING_TOKEN = (
    "No bot token: set PRESCREEN_BOT_TOKEN in .env or the environment. To get one, talk to "
    "@BotFather in Telegram, send /newbot, and copy the token it gives you "
    "(it looks like 123456789:AA…)."
)

MENU = (
    "new",
    "resume",
    "pending",
    "status",
    "back",
    "cancel",
    "review",
    "help",
    "language",
    "staff",
    "start",
)
"""The commands Telegram lists in its menu, in this order (their descriptions: ``menu_*``)."""

_COMMAND_HANDLERS: dict[str, Handler] = {
    "start": commands.cmd_start,
    "help": commands.cmd_help,
    "new": commands.cmd_new,
    "resume": commands.cmd_resume,
    "pending": commands.cmd_pending,
    "status": commands.cmd_status,
    "back": commands.cmd_back,
    "cancel": commands.cmd_cancel,
    "review": commands.cmd_review,
    "language": commands.cmd_language,
    "export": commands.cmd_export,
    "staff": commands.cmd_staff,
}


def register(app: App, shell: Shell) -> None:
    """Add every handler to the application.

    The gate runs first (group -1) and marking the update processed last (group 1); in
    between, one handler of group 0 answers the update.
    """
    app.add_handler(TypeHandler(Update, partial(gate, shell)), group=-1)
    app.add_handler(TypeHandler(Update, partial(mark_processed, shell)), group=1)
    for name, handler in _COMMAND_HANDLERS.items():
        app.add_handler(CommandHandler(name, partial(handler, shell)))
    app.add_handler(MessageHandler(filters.COMMAND, partial(commands.on_unknown_command, shell)))
    app.add_handler(CallbackQueryHandler(partial(on_button, shell)))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, partial(on_text, shell)))
    app.add_error_handler(on_error)


async def _post_init(app: App) -> None:
    """Register the command menu in both languages."""
    for lang in LANGUAGES:
        await app.bot.set_my_commands(
            [BotCommand(c, tr(f"menu_{c}", lang)) for c in MENU],
            language_code=None if lang == "en" else lang,
        )


def build_application(
    service: ScreeningService,
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    rate_limit: bool = True,
    clock: Callable[[], datetime] = utc_now,
) -> App:
    """The python-telegram-bot application with every handler registered.

    Args:
        service: The screening use cases.
        settings: Token, Bot API URLs.
        request: A transport to use instead of HTTP (the tests' fake Bot API).
        rate_limit: Apply Telegram's rate limits (python-telegram-bot's ``AIORateLimiter``).
        clock: The current time (reminders fall due by it).

    Raises:
        ValueError: No bot token is configured.
    """
    if settings.bot_token is None:
        raise ValueError(MISSING_TOKEN)
    builder = (
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        # Concurrent across chats, in order within each (see bot.ordering).
        .concurrent_updates(PerChatUpdateProcessor(settings.max_concurrent_updates))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if rate_limit:
        limiter: Any = AIORateLimiter()  # generic over its arguments; the builder's default is None
        builder = builder.rate_limiter(limiter)
    shell = Shell(service, settings, clock)

    async def post_shutdown(app: App) -> None:
        shell.close()  # let the database threads finish their calls

    app = builder.post_init(_post_init).post_shutdown(post_shutdown).build()
    register(app, shell)
    assert app.job_queue is not None  # python-telegram-bot[job-queue] is a dependency
    app.job_queue.run_repeating(
        partial(send_due_reminders, shell), interval=EVERY_SECONDS, first=5, name="reminders"
    )
    return app
