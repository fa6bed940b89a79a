"""The conventional baseline: a ``ConversationHandler`` asking the seed trial's questions, in
memory or with ``PicklePersistence(update_interval=1)``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

from bench.driving import dialogs
from tests.telegram_fake import FakeBotAPI


class TimedPicklePersistence(PicklePersistence[Any, Any, Any]):
    """PicklePersistence, counting its update calls and the time they block the event loop.

    A diagnostic of the baseline: with ``on_flush`` off (python-telegram-bot's default) each
    flush calls these for every conversation and every ``user_data`` or ``chat_data`` accessed
    since the last one, and a call writes the whole file if its data changed (a call whose
    data did not change returns at once, so it adds to the count but hardly to the time).
    These methods do not await, so each call's time is time the loop stood still (the
    application's flush runs them as separate tasks, with updates processed in between).
    """

    calls = 0
    seconds = 0.0

    async def update_conversation(self, name: str, key: Any, new_state: object | None) -> None:
        started = time.perf_counter()
        await super().update_conversation(name, key, new_state)
        self._count(started)

    async def update_user_data(self, user_id: int, data: Any) -> None:
        started = time.perf_counter()
        await super().update_user_data(user_id, data)
        self._count(started)

    async def update_chat_data(self, chat_id: int, data: Any) -> None:
        started = time.perf_counter()
        await super().update_chat_data(chat_id, data)
        self._count(started)

    def _count(self, started: float) -> None:
        self.seconds += time.perf_counter() - started
        self.calls += 1


def baseline_app(
    api: FakeBotAPI, persistence_path: Path | None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A ConversationHandler with one state per question, answers kept in ``user_data``.

    It asks the seed trial's questions in order, and records, checks and decides nothing else.
    """
    from flows.loader import BUNDLED_DIR, load_protocol
    from flows.schema import ChoiceQuestion, YesNoQuestion

    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    # The same questions the seed asks an eligible woman, in order.
    order = [q for q in seed.questions if q.id != "male_reproductive_potential"]

    def keyboard(index: int) -> InlineKeyboardMarkup | None:
        if index >= len(order):
            return InlineKeyboardMarkup([[InlineKeyboardButton("✍ Sign", callback_data="sign")]])
        q = order[index]
        labels = (
            ["Yes", "No"]
            if isinstance(q, YesNoQuestion)
            else [o.text.en for o in q.options]
            if isinstance(q, ChoiceQuestion)
            else []
        )
        buttons = [
            InlineKeyboardButton(label, callback_data=f"{index}:{i}")
            for i, label in enumerate(labels)
        ]
        return InlineKeyboardMarkup([buttons]) if buttons else None

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, index: int) -> int:
        assert update.effective_chat is not None
        text = order[index].text.en if index < len(order) else "Eligible. Sign?"
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=keyboard(index))
        return index

    async def new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert context.user_data is not None
        context.user_data["answers"] = {}
        return await ask(update, context, 0)

    def answer(index: int) -> Any:
        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            assert context.user_data is not None
            query = update.callback_query
            if query:
                await query.answer()
                value = query.data
            else:
                assert update.effective_message is not None
                value = update.effective_message.text
            if index >= len(order):
                await context.bot.send_message(update.effective_user.id, "Signed.")  # type: ignore[union-attr]
                return ConversationHandler.END
            context.user_data["answers"][order[index].id] = value
            return await ask(update, context, index + 1)

        return handle

    states: dict[object, list[BaseHandler[Update, Any, Any]]] = {
        i: [CallbackQueryHandler(answer(i)), MessageHandler(filters.TEXT, answer(i))]
        for i in range(len(order) + 1)
    }
    conversation = ConversationHandler(
        entry_points=[CommandHandler("new", new)],
        states=states,
        fallbacks=[],
        name="screening",
        persistent=persistence_path is not None,
    )
    builder = ApplicationBuilder().token("1:bench").request(api).get_updates_request(api)
    if persistence_path is not None:
        builder = builder.persistence(TimedPicklePersistence(persistence_path, update_interval=1))
    app = builder.build()
    app.add_handler(conversation)
    return app


async def baseline(chats: int, pickle: bool, rounds: int) -> dict[str, Any]:
    api = FakeBotAPI()
    # The pickle file's folder, removed when the run ends.
    folder = tempfile.TemporaryDirectory(prefix="prescreen-bench-")
    path = Path(folder.name) / "state.pickle" if pickle else None
    app = baseline_app(api, path)
    await app.initialize()
    await app.start()  # runs the persistence's periodic flush
    try:
        users = [100_000 + i for i in range(chats)]
        started = time.perf_counter()
        latencies = await dialogs(app, api, users, rounds)
        await app.stop()
        # python-telegram-bot makes the persistence's last flush in ``shutdown``, not in
        # ``stop``: only after it is every answer on disk, so it counts.
        await app.shutdown()
        wall = time.perf_counter() - started
    finally:
        await app.shutdown()  # returns at once if already shut down
        folder.cleanup()
    persistence = {}
    if isinstance(app.persistence, TimedPicklePersistence):
        persistence = {
            "persistence_calls": app.persistence.calls,
            "persistence_s": app.persistence.seconds,
        }
    return {"latencies": latencies, "wall": wall, **persistence}
