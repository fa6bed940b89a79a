"""End to end: full seed-trial screenings per chat through the real python-telegram-bot
``Application`` and the fake Bot API, for ours and for the conventional ``ConversationHandler``
(in memory, and with ``PicklePersistence(update_interval=1)``), in the same run.

Each configuration runs in a process of its own (so peak RSS is its own):
``python -m bench.e2e --mode ours --db sqlite --chats 100`` prints one JSON line;
``python -m bench.e2e`` runs the whole matrix and prints a table with the ratios;
``python -m bench.e2e --pairs 6 --db sqlite --chats 1000`` the ratio to the in-memory
``ConversationHandler`` in back-to-back pairs (:func:`pairs`). ``--timers`` (with ``--mode ours``)
adds the wall time of each repository call, measured where the bot makes it (:class:`CallTimers`).
``--steps`` (with ``--mode``) adds each step of the dialog's p50 and p99 and its share of the
run's slowest answers (:func:`by_step`).

``python -m bench.e2e --network`` runs the same dialogs with every Bot API call taking
``--latency-ms`` (20 ms by default), as a real network does, each chat sending its next update
once the reply to the previous one has arrived: what processing updates concurrently (ours, and
python-telegram-bot's ``concurrent_updates``) does against processing one at a time (its default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
    latency: float,
) -> list[tuple[int, float]]:
    """The chats' screenings: each chat at its own pace over a network (``latency`` > 0, see
    :func:`drive_chats`), else interleaved step by step (:func:`drive`).

    Returns:
        For each update, its step in :data:`SCRIPT` and its latency in seconds.
    """
    async with Heartbeat() as beat:
        if latency:
            latencies = await drive_chats(app, api, users, rounds)
        else:
            latencies = await drive(app, api, users, rounds)
    STALLS.append(beat.max_stall_s)
    return latencies


class SlowBotAPI(FakeBotAPI):
    """The fake Bot API with a network's round trip on every call (the event loop runs on)."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency

    async def answer(self, name: str, params: dict[str, Any]) -> Any:
        await asyncio.sleep(self.latency)
        return await super().answer(name, params)


async def drive_chats(
    app: Application[Any, Any, Any, Any, Any, Any],
    api: FakeBotAPI,
    users: list[int],
    rounds: int = 1,
) -> list[tuple[int, float]]:
    """Every chat at once, each sending its next update when the previous one was processed.

    Updates go through the application's update processor, as polling and the webhook hand
    them over (one at a time unless the application processes updates concurrently).

    Returns:
        For each update, its step in :data:`SCRIPT` and its time from sending to processed.
    """
    latencies: list[tuple[int, float]] = []
    processor = app.update_processor

    async def chat(user: int) -> None:
        for r in range(rounds):
            for index, (kind, arg) in enumerate(SCRIPT):
                inbox = api.by_chat.get(user)
                data = _update(
                    kind, arg.format(code=f"S-{user}-{r}"), user, inbox[-1] if inbox else None
                )
                update = Update.de_json(data, app.bot)
                started = time.perf_counter()
                await processor.process_update(update, app.process_update(update))
                latencies.append((index, time.perf_counter() - started))

    await asyncio.gather(*(chat(user) for user in users))
    return latencies


# --- timers around the repository (``--timers``) -----------------------------------------------


class CallTimers:
    """The wall time of every call to a repository's methods during a run (``--timers``).

    A profiler's sampling slows the bot and the database unevenly, and a loop of the calls
    alone runs them with warm caches, which the running bot does not have (on SQLite, in half
    to two thirds of the time). These timers measure the calls where they happen, for about a
    microsecond each. A call made in a database thread counts its time in that thread; a method
    that calls another (the gate's read, reading a screening it has not cached) counts that
    call's time too.
    """

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}  # name: [calls, seconds]
        self._lock = threading.Lock()

    def attach(self, repo: object) -> None:
        """Time every method of the repository interface on ``repo`` (this object only)."""
        from storage.repository import Repository

        for name in dir(Repository):
            if not name.startswith("_") and callable(getattr(Repository, name)):
                setattr(repo, name, self._timed(name, getattr(repo, name)))

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        totals = self.totals.setdefault(name, [0, 0.0])
        lock = self._lock

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                with lock:
                    totals[0] += 1
                    totals[1] += elapsed

        return timed

    def summary(self, updates: int) -> dict[str, dict[str, float]]:
        """Each method called: its calls, mean µs a call, and µs per update of the run."""
        with self._lock:
            return {
                name: {
                    "calls": calls,
                    "us_per_call": seconds / calls * 1e6,
                    "us_per_update": seconds / updates * 1e6,
                }
                for name, (calls, seconds) in sorted(self.totals.items(), key=lambda t: -t[1][1])
                if calls
            }


# --- ours --------------------------------------------------------------------------------------


async def ours(
    chats: int,
    db: str,
    rounds: int,
    latency: float = 0.0,
    concurrency: int = 256,
    timers: CallTimers | None = None,
) -> dict[str, Any]:
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
        if timers is not None:
            timers.attach(repo)  # after the set-up: only the run's calls count
        service = ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN)
        api = SlowBotAPI(latency) if latency else FakeBotAPI()
        settings = Settings(
            bot_token="1:bench",
            max_concurrent_updates=concurrency,
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
                latencies = await dialogs(app, api, users, rounds, latency)
                await app.stop()
                wall = time.perf_counter() - started
            timed = {} if timers is None else {"timers": timers.summary(len(latencies))}
            signed = sum(
                1
                for u in users
                for r in range(rounds)
                if (s := repo.find_screening(f"S-{u}-{r}")) and s.close_kind == "signed"
            )
        finally:
            await app.shutdown()
        assert signed == chats * rounds, f"only {signed} of {chats * rounds} screenings completed"
        return {"latencies": latencies, "wall": wall, **timed}


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
    api: FakeBotAPI, persistence_path: Path | None, concurrency: int = 1, shaped: bool = False
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A ConversationHandler with one state per question, answers kept in ``user_data``.

    ``concurrency`` > 1 turns on python-telegram-bot's ``concurrent_updates`` (which keeps no
    order within a chat; the benchmark's chats never send before their reply has arrived).
    ``shaped`` sends Prescreen's messages instead (a diagnostic): the echo, the code, the
    progress line and the criterion above each question, its "Unknown" and "Back" buttons,
    and on a tap the spent buttons removed, alongside the acknowledgement and the next question.
    It still records nothing but ``user_data``, checks nothing and decides nothing.
    """
    from flows.loader import BUNDLED_DIR, load_protocol
    from flows.schema import ChoiceQuestion, YesNoQuestion

    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    # The same questions the seed asks an eligible woman, in order.
    order = [q for q in seed.questions if q.id != "male_reproductive_potential"]

    def labels_of(index: int) -> list[str]:
        q = order[index]
        if isinstance(q, YesNoQuestion):
            return ["Yes", "No"]
        if isinstance(q, ChoiceQuestion):
            return [o.text.en for o in q.options]
        return []

    def keyboard(index: int) -> InlineKeyboardMarkup | None:
        if index >= len(order):
            return InlineKeyboardMarkup([[InlineKeyboardButton("✍ Sign", callback_data="sign")]])
        labels = labels_of(index)
        buttons = [
            InlineKeyboardButton(label, callback_data=f"{index}:{i}")
            for i, label in enumerate(labels)
        ]
        if not shaped:
            return InlineKeyboardMarkup([buttons]) if buttons else None
        short = all(len(label) <= 4 for label in labels)
        rows = [buttons] if short else [[b] for b in buttons]
        last = [InlineKeyboardButton("Unknown / pending", callback_data=f"{index}:u")]
        if index:
            last.append(InlineKeyboardButton("◀ Back", callback_data=f"back:{index}"))
        return InlineKeyboardMarkup([*(r for r in rows if r), last])

    def text_of(context: ContextTypes.DEFAULT_TYPE, index: int, echo: str | None) -> str:
        if not shaped:
            return order[index].text.en if index < len(order) else "Eligible. Sign?"
        assert context.user_data is not None
        code = context.user_data["code"]
        if index >= len(order):
            body = f"[{code}] Eligible: every criterion is met.\n\nSign to confirm."
        else:
            q = order[index]
            criterion = seed.criteria_of_question[q.id][0]
            body = (
                f"[{code}] Question {index + 1} of {len(order)} · Criterion {criterion}\n"
                f"{q.text.en}"
            )
        return f"✔ {echo}\n\n{body}" if echo is not None else body

    async def ask(
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        index: int,
        echo: str | None = None,
    ) -> int:
        assert update.effective_chat is not None
        await context.bot.send_message(
            update.effective_chat.id, text_of(context, index, echo), reply_markup=keyboard(index)
        )
        return index

    async def new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert context.user_data is not None
        context.user_data["answers"] = {}
        if shaped:
            assert context.args
            context.user_data["code"] = context.args[0]
        return await ask(update, context, 0)

    def answer(index: int) -> Any:
        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            assert context.user_data is not None
            query = update.callback_query
            spent: Any = None
            if query and shaped:
                # Prescreen's tap: the acknowledgement and the removal of the spent buttons
                # travel alongside the next question.
                spent = asyncio.gather(query.answer(), query.edit_message_reply_markup(None))
            elif query:
                await query.answer()
            if query:
                value = query.data
            else:
                assert update.effective_message is not None
                value = update.effective_message.text
            try:
                if index >= len(order):
                    await context.bot.send_message(update.effective_user.id, "Signed.")  # type: ignore[union-attr]
                    return ConversationHandler.END
                context.user_data["answers"][order[index].id] = value
                echo = value
                if shaped and query and value and ":" in value:  # the tapped label, as ours
                    echo = labels_of(index)[int(value.partition(":")[2])]
                return await ask(update, context, index + 1, echo)
            finally:
                if spent is not None:
                    await spent

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
    builder = builder.concurrent_updates(concurrency if concurrency > 1 else False)
    if persistence_path is not None:
        builder = builder.persistence(TimedPicklePersistence(persistence_path, update_interval=1))
    app = builder.build()
    app.add_handler(conversation)
    return app


async def baseline(
    chats: int,
    pickle: bool,
    rounds: int,
    latency: float = 0.0,
    concurrency: int = 1,
    shaped: bool = False,
) -> dict[str, Any]:
    api = SlowBotAPI(latency) if latency else FakeBotAPI()
    # The pickle file's folder, removed when the run ends.
    folder = tempfile.TemporaryDirectory(prefix="prescreen-bench-")
    path = Path(folder.name) / "state.pickle" if pickle else None
    app = baseline_app(api, path, concurrency, shaped)
    await app.initialize()
    await app.start()  # runs the persistence's periodic flush
    try:
        users = [100_000 + i for i in range(chats)]
        started = time.perf_counter()
        latencies = await dialogs(app, api, users, rounds, latency)
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


def _answers_p99(updates: list[tuple[int, float]]) -> float:
    """The run's p99 over its answers (not the command or the signature); infinite if none."""
    answers = sorted(latency for index, latency in updates if index in ANSWER_STEPS)
    return _p99(answers) if answers else float("inf")


def by_step(updates: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """Each step of :data:`SCRIPT`: its updates' p50 and p99, and its share of the slowest.

    The run's p99 is taken over every answer, whichever step it answers. This tells whether
    the slowest 1 % belong to a few heavy steps or spread over them all: ``slowest`` counts a
    step's answers at or above the run's p99 (the command and the signature count none, as
    they are not answers).
    """
    p99 = _answers_p99(updates)
    steps: dict[int, list[float]] = {}
    for index, latency in updates:
        steps.setdefault(index, []).append(latency)
    rows = []
    for index in sorted(steps):
        ordered = sorted(steps[index])
        kind, arg = SCRIPT[index]
        rows.append(
            {
                "step": index,
                "update": f"{kind} {arg}",
                "p50_ms": statistics.median(ordered) * 1000,
                "p99_ms": _p99(ordered) * 1000,
                "slowest": sum(1 for x in ordered if x >= p99) if index in ANSWER_STEPS else 0,
            }
        )
    return rows


def summarise(result: dict[str, Any], steps: bool = False) -> dict[str, Any]:
    updates = result.pop("latencies")
    answers = sorted(latency for index, latency in updates if index in ANSWER_STEPS)
    return {
        "updates": len(updates),
        "answers": len(answers),
        # Wall-clock, from the first update to the end of the application's stop: background
        # work (the pickle flushes) counts, as it blocks the event loop in production too.
        "answers_per_s": len(answers) / result["wall"],
        "updates_per_s": len(updates) / result["wall"],
        # Latency: the processing of one answer, from the update to the reply being sent.
        "p50_ms": statistics.median(answers) * 1000,
        "p99_ms": _p99(answers) * 1000,
        "max_loop_stall_ms": (STALLS[-1] * 1000) if STALLS else None,
        "peak_rss_mb": peak_rss_mb(),
        # PicklePersistence only: its update calls (which write the file), and their time.
        **{k: result[k] for k in ("persistence_calls", "persistence_s") if k in result},
        # ``--timers`` only: the repository's calls, timed where the bot makes them.
        **({"repository": result["timers"]} if "timers" in result else {}),
        # ``--steps`` only: each step of the dialog on its own.
        **({"steps": by_step(updates)} if steps else {}),
    }


def one(
    mode: str,
    db: str,
    chats: int,
    rounds: int,
    latency: float = 0.0,
    concurrency: int = 0,
    timers: bool = False,
    steps: bool = False,
) -> dict[str, Any]:
    """One configuration's run, summarised (``concurrency`` 0: each side's default).

    With ``timers`` (ours only), also the repository's calls as :class:`CallTimers` saw them;
    with ``steps``, each step of the dialog on its own (:func:`by_step`).
    """
    if mode == "ours":
        timed = CallTimers() if timers else None
        raw = asyncio.run(ours(chats, db, rounds, latency, concurrency or 256, timed))
    else:
        raw = asyncio.run(
            baseline(chats, mode == "pickle", rounds, latency, concurrency or 1, mode == "shaped")
        )
    return {
        "mode": mode,
        "db": db if mode == "ours" else "-",
        "chats": chats,
        "concurrency": concurrency or (256 if mode == "ours" else 1),
        "latency_ms": latency * 1000,
        **summarise(raw, steps),
    }


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


def pairs(count: int, db: str, chats: int) -> str:
    """The ratio to the in-memory ConversationHandler, measured in back-to-back pairs.

    On some machines the speed changes by half from one spell to the next, and one
    configuration's median run may come from a faster spell than another's. Each pair runs the
    ConversationHandler and ours one right after the other, the order alternating from pair to
    pair, so each pair's ratio compares the two in one spell; the median of the ratios is the
    figure.
    """
    lines = [
        f"| pair | ConversationHandler, in memory | {DB_NAMES[db]} | ratio |",
        "|---|---|---|---|",
    ]
    ratios = []
    for i in range(count):
        order = [("memory", "-"), ("ours", db)]
        if i % 2:
            order.reverse()
        runs = {mode: run_alone(mode, d, chats)["answers_per_s"] for mode, d in order}
        ratios.append(runs["ours"] / runs["memory"])
        lines.append(f"| {i + 1} | {runs['memory']:.0f} | {runs['ours']:.0f} | {ratios[-1]:.2f}× |")
        print(f"  pair {i + 1}/{count}: {ratios[-1]:.2f}×", file=sys.stderr)
    lines.append(
        f"\nMedian of {count} pairs at {chats} chats: {statistics.median(ratios):.2f}× "
        f"({min(ratios):.2f}–{max(ratios):.2f}×)."
    )
    return "\n".join(lines)


def matrix(chat_counts: list[int], dbs: list[str], repeat: int) -> list[dict[str, Any]]:
    """Every configuration ``repeat`` times, each in a fresh process; the median run of each.

    The runs are interleaved (every configuration once, then again) so that a slow spell of
    the machine does not fall on one configuration only.
    """
    configs = [
        (chats, mode, db)
        for chats in chat_counts
        for mode, db in [
            ("memory", "-"),
            ("pickle", "-"),
            *(("ours", d) for d in dbs),
            ("shaped", "-"),  # a diagnostic row
        ]
    ]
    runs: dict[tuple[int, str, str], list[dict[str, Any]]] = {c: [] for c in configs}
    for attempt in range(repeat):
        for chats, mode, db in configs:
            run = run_alone(mode, db, chats)
            runs[chats, mode, db].append(run)
            print(
                f"  run {attempt + 1}/{repeat}: {mode} {db} {chats} chats: "
                f"{run['answers_per_s']:.0f} answers/s",
                file=sys.stderr,
            )
    rows = []
    for config in configs:
        ordered = sorted(runs[config], key=lambda r: r["answers_per_s"])
        spread = (ordered[0]["answers_per_s"], ordered[-1]["answers_per_s"])
        rows.append({**ordered[len(ordered) // 2], "runs": len(ordered), "spread": spread})
    return rows


DB_NAMES = {
    "sqlite": "Prescreen on SQLite",
    "postgres": "Prescreen on PostgreSQL",
    "memory": "Prescreen without a database (the tests' fake; diagnostic)",
}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| chats | configuration | answers/s | slowest–fastest run | p50 ms | p99 ms | "
        "peak RSS MB | vs in-memory | vs pickle |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        same = {r["mode"]: r for r in rows if r["chats"] == row["chats"]}
        ratio_mem = row["answers_per_s"] / same["memory"]["answers_per_s"]
        ratio_pickle = row["answers_per_s"] / same["pickle"]["answers_per_s"]
        name = {
            "memory": "ConversationHandler, in memory",
            "pickle": "ConversationHandler + PicklePersistence(1 s)",
            "shaped": "ConversationHandler, in memory, sending Prescreen's messages (diagnostic)",
        }.get(row["mode"], DB_NAMES.get(row["db"], row["db"]))
        lines.append(
            f"| {row['chats']} | {name} | {row['answers_per_s']:.0f} | "
            f"{row['spread'][0]:.0f}–{row['spread'][1]:.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['peak_rss_mb']:.0f} | "
            f"{ratio_mem:.2f}× | {ratio_pickle:.2f}× |"
        )
    for row in rows:
        if "persistence_calls" in row:
            wall = row["answers"] / row["answers_per_s"]
            lines.append(
                f"\nPicklePersistence at {row['chats']} chats (the median run): "
                f"{row['persistence_calls']} update calls (each writing the whole file if "
                f"something changed), {row['persistence_s']:.1f} s of the run's "
                f"{wall:.1f} s ({100 * row['persistence_s'] / wall:.0f} %)."
            )
    return "\n".join(lines)


def network_matrix(dbs: list[str], latency_ms: float) -> list[dict[str, Any]]:
    """The dialogs over a slow network: one update at a time against concurrently.

    One update at a time, the throughput is the round trips' and does not depend on the number
    of chats (at 1,000 chats a run would take twenty minutes): those run at 100 chats only.
    """
    configs = [
        (100, "memory", "-", 1),
        (100, "memory", "-", 256),
        (100, "ours", "sqlite", 1),
        *((100, "ours", db, 256) for db in dbs),
        (1000, "memory", "-", 256),
        *((1000, "ours", db, 256) for db in dbs),
    ]
    rows = []
    for chats, mode, db, concurrency in configs:
        command = [sys.executable, "-m", "bench.e2e", "--mode", mode, "--db", db]
        command += ["--chats", str(chats), "--concurrency", str(concurrency)]
        command += ["--latency-ms", str(latency_ms)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {mode} {db} {chats} chats, {concurrency} at once", file=sys.stderr)
    return rows


def network_table(rows: list[dict[str, Any]]) -> str:
    sequential = next(r for r in rows if r["mode"] == "memory" and r["concurrency"] == 1)
    lines = [
        "| chats | configuration | updates at once | answers/s | p50 ms | p99 ms | peak RSS MB | "
        "vs ConversationHandler one at a time | vs ConversationHandler concurrent |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        concurrent = next(
            r
            for r in rows
            if r["mode"] == "memory" and r["concurrency"] > 1 and r["chats"] == row["chats"]
        )
        name = (
            "ConversationHandler, in memory"
            if row["mode"] == "memory"
            else DB_NAMES.get(row["db"], row["db"])
        )
        lines.append(
            f"| {row['chats']} | {name} | {row['concurrency']} | {row['answers_per_s']:.0f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['peak_rss_mb']:.0f} | "
            f"{row['answers_per_s'] / sequential['answers_per_s']:.1f}× | "
            f"{row['answers_per_s'] / concurrent['answers_per_s']:.2f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["ours", "memory", "pickle", "shaped"])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres", "memory", "-"])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--matrix", default="1,100,1000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument(
        "--network", action="store_true", help="every Bot API call takes --latency-ms"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="updates at once (0: each side's default)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="this many back-to-back pairs of the in-memory ConversationHandler and ours "
        "(--db, --chats): the ratio to it, pair by pair",
    )
    parser.add_argument(
        "--timers",
        action="store_true",
        help="with --mode ours: time every repository call where the bot makes it",
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="with --mode: each step of the dialog's p50 and p99, and how many of the run's "
        "slowest 1 %% of answers it holds",
    )
    args = parser.parse_args()
    if args.steps and not args.mode:
        parser.error("--steps breaks one run down: use it with --mode")
    if args.timers and args.mode != "ours":
        parser.error("--timers times the bot's repository: use it with --mode ours")
    if args.pairs:
        print(pairs(args.pairs, args.db, args.chats))
        return
    if args.mode:
        latency = args.latency_ms / 1000
        result = one(
            args.mode,
            args.db,
            args.chats,
            args.rounds,
            latency,
            args.concurrency,
            args.timers,
            args.steps,
        )
        print(json.dumps(result))
        return
    dbs = ["sqlite"] + (["postgres"] if os.environ.get("PRESCREEN_BENCH_POSTGRES_URL") else [])
    if args.network:
        print(network_table(network_matrix(dbs, args.latency_ms or 20.0)))
        return
    dbs.append("memory")  # a diagnostic row: the bot's own cost, without a database
    print(table(matrix([int(c) for c in args.matrix.split(",")], dbs, args.repeat)))


if __name__ == "__main__":
    main()
