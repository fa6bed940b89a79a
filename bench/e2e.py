"""End to end: full seed-trial screenings per chat through the real python-telegram-bot
``Application`` and the fake Bot API, for ours and for the conventional ``ConversationHandler``
(in memory, and with ``PicklePersistence(update_interval=1)``).

Each configuration runs in a process of its own (so peak RSS is its own), as ``python -m bench``
runs them: ``python -m bench.e2e --mode ours --db sqlite --chats 1000`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
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

from bench.rss import peak_rss_mb
from tests.telegram_fake import FakeBotAPI

# One eligible screening: (kind, argument); ``{code}`` is the chat's screening code.
SCRIPT: list[tuple[str, str]] = [
    ("send", "/new {code}"),
    ("press", "Yes"),
    ("press", "Yes"),
    ("press", "B-ALL, refractory"),
    ("send", "2"),
    ("press", "No"),
    ("press", "No"),
    ("press", "No suitable donor"),
    ("send", "45"),
    ("press", "Female"),
    ("press", "1"),
    ("press", "Yes"),
    ("press", "Yes"),
    ("send", "0.8x ULN"),
    ("send", "60"),
    ("send", "97"),
    ("send", "0.5x ULN"),
    ("send", "30 U/L ULN 40"),
    ("send", "35 U/L ULN 40"),
    ("press", "Yes"),
    ("send", "9.5 g/dL"),
    ("send", "1200/µL"),
    ("send", "150"),
    ("press", "Yes"),
    ("press", "Negative"),
    ("press", "Yes"),
    ("press", "✍ Sign"),
]
ANSWERS_PER_SCREENING = len(SCRIPT) - 2  # the command and the signature are not answers
ANSWER_STEPS = range(1, len(SCRIPT) - 1)
_ids = itertools.count(1)


def _button_data(message: dict[str, Any], label: str) -> str:
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button["text"].startswith(label):
                return str(button["callback_data"])
    raise AssertionError(f"no button {label!r} in {message.get('text', '')[:200]!r}")


def _update(kind: str, arg: str, user_id: int, last: dict[str, Any] | None) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "en"}
    if kind == "press":
        assert last is not None
        return {
            "update_id": next(_ids),
            "callback_query": {
                "id": str(next(_ids)),
                "from": user,
                "chat_instance": "1",
                "message": last,
                "data": _button_data(last, arg),
            },
        }
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": 0,
        "text": arg,
        "from": user,
        "chat": {"id": user_id, "type": "private"},
    }
    if arg.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(arg.split()[0])}]
    return {"update_id": next(_ids), "message": message}


async def drive(
    app: Application[Any, Any, Any, Any, Any, Any],
    api: FakeBotAPI,
    users: list[int],
    rounds: int = 1,
    first_round: int = 0,
) -> list[tuple[int, float]]:
    """Interleave the chats step by step.

    Returns:
        For each update, its step in :data:`SCRIPT` and its processing time in seconds.
    """
    latencies: list[tuple[int, float]] = []
    processor = app.update_processor
    for r in range(first_round, first_round + rounds):
        for index, (kind, arg) in enumerate(SCRIPT):
            for user in users:
                inbox = api.by_chat.get(user)
                data = _update(
                    kind, arg.format(code=f"S-{user}-{r}"), user, inbox[-1] if inbox else None
                )
                started = time.perf_counter()
                # As polling and the webhook hand an update over: through the application's
                # update processor (python-telegram-bot's default one, one at a time, for the
                # ConversationHandler).
                update = Update.de_json(data, app.bot)
                await processor.process_update(update, app.process_update(update))
                latencies.append((index, time.perf_counter() - started))
                # A real transport waits for the network here, which lets the application's
                # background tasks (PicklePersistence's periodic flush) run between updates.
                await asyncio.sleep(0)
    return latencies


class Heartbeat:
    """The longest time the event loop was blocked, measured, not derived.

    A task wakes up every millisecond and notes how late it woke: while a handler runs without
    awaiting (a database call on the event loop, a pickle flush), it cannot wake at all.
    """

    PERIOD = 0.001

    def __init__(self) -> None:
        self.max_stall_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.max_stall_s = max(self.max_stall_s, time.perf_counter() - before - self.PERIOD)

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


STALLS: list[float] = []
"""The last runs' longest event-loop stalls in seconds (read by :func:`summarise`)."""


async def dialogs(
    app: Application[Any, Any, Any, Any, Any, Any],
    api: FakeBotAPI,
    users: list[int],
    rounds: int,
) -> list[tuple[int, float]]:
    """The chats' screenings, interleaved step by step (:func:`drive`), under a heartbeat.

    Returns:
        For each update, its step in :data:`SCRIPT` and its latency in seconds.
    """
    async with Heartbeat() as beat:
        latencies = await drive(app, api, users, rounds)
    STALLS.append(beat.max_stall_s)
    return latencies


# --- ours --------------------------------------------------------------------------------------


async def ours(chats: int, db: str, rounds: int) -> dict[str, Any]:
    from bench.scratch import scratch_engine
    from bot.application import build_application
    from bot.runner import tune_garbage_collector
    from bot.service import ScreeningService
    from bot.settings import DEFAULT_CODE_PATTERN, Settings
    from flows import Catalog
    from flows.loader import BUNDLED_DIR, load_protocol
    from storage.db import Checkpointer, upgrade
    from storage.memory import InMemoryRepository
    from storage.records import Role, Staff
    from storage.repository import Repository
    from storage.sql import SqlRepository

    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    # The run's database, removed when the run ends, however it ends (after the application's
    # shutdown, which the block's own ``finally`` awaits first).
    with contextlib.ExitStack() as scratch:
        checkpointer: Any = contextlib.nullcontext()
        engine = None
        if db == "memory":
            pass  # the tests' fake repository: what the bot costs without any database
        elif db == "sqlite":
            # As the bot runs it (``container.build(serving=True)``): checkpoints in the background.
            engine = scratch.enter_context(scratch_engine("sqlite", auto_checkpoint=False))
            checkpointer = Checkpointer(engine)
        else:
            engine = scratch.enter_context(scratch_engine("postgres"))
        repo: Repository = InMemoryRepository()
        if engine is not None:
            upgrade(engine)
            repo = SqlRepository(engine)
        users = [100_000 + i for i in range(chats)]
        for user in users:
            repo.save_staff(Staff(user, f"U{user}", Role.COORDINATOR))
        service = ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN)
        api = FakeBotAPI()
        settings = Settings(
            bot_token="1:bench",
            # As configured in production: database calls in worker threads on PostgreSQL.
            database_url=str(engine.url) if engine is not None else "sqlite://",
            _env_file=None,
        )
        app = build_application(service, settings, request=api, rate_limit=False)
        await app.initialize()
        tune_garbage_collector()  # as bot.runner serves
        await app.start()
        try:
            with checkpointer:
                started = time.perf_counter()
                latencies = await dialogs(app, api, users, rounds)
                await app.stop()
                wall = time.perf_counter() - started
            signed = sum(
                1
                for u in users
                for r in range(rounds)
                if (s := repo.find_screening(f"S-{u}-{r}")) and s.close_kind == "signed"
            )
        finally:
            await app.shutdown()
        assert signed == chats * rounds, f"only {signed} of {chats * rounds} screenings completed"
        return {"latencies": latencies, "wall": wall}


# --- the conventional baseline -----------------------------------------------------------------


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


# --- orchestration -----------------------------------------------------------------------------


def _p99(ordered: list[float]) -> float:
    """The 99th percentile of sorted values, as the run's p99 is taken."""
    return ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    updates = result.pop("latencies")
    answers = sorted(latency for index, latency in updates if index in ANSWER_STEPS)
    return {
        "updates": len(updates),
        "answers": len(answers),
        # Wall-clock, from the first update to the end of the application's stop: background
        # work (the pickle flushes) counts, as it blocks the event loop in production too.
        "answers_per_s": len(answers) / result["wall"],
        # Latency: the processing of one answer, from the update to the reply being sent.
        "p50_ms": statistics.median(answers) * 1000,
        "p99_ms": _p99(answers) * 1000,
        "max_loop_stall_ms": (STALLS[-1] * 1000) if STALLS else None,
        "peak_rss_mb": peak_rss_mb(),
        # PicklePersistence only: its update calls (which write the file), and their time.
        **{k: result[k] for k in ("persistence_calls", "persistence_s") if k in result},
    }


def one(mode: str, db: str, chats: int, rounds: int) -> dict[str, Any]:
    """One configuration's run, summarised."""
    if mode == "ours":
        raw = asyncio.run(ours(chats, db, rounds))
    else:
        raw = asyncio.run(baseline(chats, mode == "pickle", rounds))
    return {"mode": mode, "db": db if mode == "ours" else "-", "chats": chats, **summarise(raw)}


def rounds_for(chats: int) -> int:
    """Screenings per chat, so that every configuration times at least 2,600 answers."""
    return max(1, 100 // chats)


def run_alone(mode: str, db: str, chats: int) -> dict[str, Any]:
    """One configuration's run in a fresh process (so peak RSS is its own), summarised."""
    command = [sys.executable, "-m", "bench.e2e", "--mode", mode, "--db", db]
    command += ["--chats", str(chats), "--rounds", str(rounds_for(chats))]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["ours", "memory", "pickle"], required=True)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres", "memory", "-"])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(one(args.mode, args.db, args.chats, args.rounds)))


if __name__ == "__main__":
    main()
