"""What every handler needs: the service, database calls off the loop, the chat's state, sending.

Handlers are plain functions of a :class:`Shell`, an update and python-telegram-bot's context.
They hold no screening state: screenings are read from and written to the database through
:class:`bot.service.ScreeningService`, and what a chat is in the middle of is a typed
:class:`bot.conversation.Conversation` that the access gate reads with the staff member and
:meth:`Shell.keep` writes back whenever it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar

from telegram import Update
from telegram.constants import MessageLimit
from telegram.ext import ContextTypes

from bot.access import can_work_on
from bot.conversation import ChecklistHeld, Conversation, Mark
from bot.i18n import t
from bot.keyboards import Keyboard
from bot.outgoing import send_text
from bot.results import Outcome, Planned
from bot.screens import checklist_offer, checklist_screen, expected_marks, screen
from bot.service import ScreeningService
from bot.settings import Settings
from flows.checklist import checklist
from flows.dialog import NEEDS_REVIEW
from flows.text import Lang, as_lang
from storage.clock import utc_now
from storage.records import Screening, Staff

Context = ContextTypes.DEFAULT_TYPE
Markup = Keyboard | None

_P = ParamSpec("_P")
_T = TypeVar("_T")


def clip(text: str) -> str:
    """Keep a message within Telegram's length limit."""
    limit = MessageLimit.MAX_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_data(context: Context) -> dict[Any, Any]:
    """This person's per-update scratch space (set by the access gate)."""
    data = context.user_data
    assert data is not None
    return data


class Shell:
    """The service and settings the handlers share, and their helpers."""

    def __init__(
        self,
        service: ScreeningService,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.service = service
        self.clock = clock
        self.repo = service.repo
        self.settings = settings
        threads = settings.db_threads
        self.threads = (
            ThreadPoolExecutor(threads, thread_name_prefix="prescreen-db") if threads else None
        )

    async def db(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Make a database call, in a worker thread when the settings give threads.

        On PostgreSQL every statement is a round trip: made on the event loop, it would hold up
        every other chat's update until the database answers; from a worker thread the loop
        goes on with them meanwhile. One chat's updates wait for each other
        (``bot.ordering``), so its calls stay in order either way.
        """
        if self.threads is None:
            return call(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, partial(call, *args, **kwargs))

    # --- who, and what they are doing ---------------------------------------------------------

    def lang(self, update: Update, context: Context) -> Lang:
        """The language chosen with /language, else the one Telegram reports."""
        conversation: Conversation | None = user_data(context).get("conversation")
        if conversation is not None and conversation.lang is not None:
            return conversation.lang
        user = update.effective_user
        return as_lang(user.language_code if user else None)

    @staticmethod
    def staff(context: Context) -> Staff:
        """The staff member behind the update (set by the access gate)."""
        staff: Staff = user_data(context)["staff"]
        return staff

    @staticmethod
    def conversation(context: Context) -> Conversation:
        """What this chat is in the middle of (read by the access gate)."""
        found: Conversation = user_data(context).get("conversation") or Conversation()
        return found

    async def keep(self, context: Context, conversation: Conversation) -> None:
        """Make ``conversation`` the chat's state, in the database as in this update."""
        if conversation == self.conversation(context):
            return
        user_data(context)["conversation"] = conversation
        stored = None if conversation == Conversation() else conversation.to_json()
        await self.db(self.repo.save_conversation, self.staff(context).telegram_id, stored)

    def current(self, context: Context) -> Screening | None:
        """The screening the staff member is working on, if still open (read by the gate)."""
        staff = self.staff(context)
        screening: Screening | None = user_data(context).get("current")
        if screening is None or not screening.unfinished or not can_work_on(staff, screening):
            return None
        return screening

    async def screening(self, context: Context, screening_id: int) -> Screening | None:
        """A screening by id (the gate has read the current one already)."""
        current: Screening | None = user_data(context).get("current")
        if current is not None and current.id == screening_id:
            return current
        return await self.db(self.repo.get_screening, screening_id)

    # --- sending ------------------------------------------------------------------------------

    async def send(
        self, update: Update, context: Context, text: str, markup: Markup = None
    ) -> None:
        """Send a message to the chat the update came from."""
        chat = update.effective_chat
        assert chat is not None
        await send_text(context.bot, chat.id, clip(text), markup)

    async def show(
        self, update: Update, context: Context, screening: Screening, prefix: str = ""
    ) -> None:
        """Send the screening's current screen, with an optional first line."""
        lang = self.lang(update, context)
        text, markup = await self._screen(context, screening, lang)
        await self.send(update, context, f"{prefix}\n\n{text}" if prefix else text, markup)

    async def notified(self, screening: Screening, lang: Lang) -> str:
        """Who was asked to review ``screening``, and when; empty when no one was."""
        asked = [n for n in await self.db(self.repo.notices, screening.id) if n.kind == "review"]
        if not asked:
            return ""
        names = {s.telegram_id: s.display_name for s in await self.db(self.repo.list_staff)}
        who = ", ".join(
            t(
                "notified_one",
                lang,
                name=names.get(n.telegram_id, n.telegram_id),
                at=f"{n.sent_at or n.due_at:%Y-%m-%d %H:%M}",
            )
            for n in asked
        )
        return t("notified", lang, who=who)

    async def _screen(
        self, context: Context, screening: Screening, lang: Lang
    ) -> tuple[str, Keyboard]:
        """The screen; where the current question opens a checklist, with the checklist."""
        if screening.state.at == NEEDS_REVIEW:
            text, markup = screen(self.service, screening, lang)
            notified = await self.notified(screening, lang)
            return (f"{text}\n{notified}" if notified else text), markup
        protocol = self.service.protocol_for(screening)
        marks = self.checklist_marks(context, screening)
        if marks is None:
            return screen(self.service, screening, lang)
        phase = self.conversation(context).phase
        if isinstance(phase, ChecklistHeld) and phase.about(screening) and phase.editing:
            return checklist_screen(protocol, screening, marks, lang)
        return checklist_offer(
            protocol, screening, marks, screen(self.service, screening, lang), lang
        )

    def checklist_marks(self, context: Context, screening: Screening) -> dict[str, Mark] | None:
        """The answers of the checklist the current question opens, if it opens one.

        Each item has its expected answer unless the coordinator changed it (the chat then
        holds the changed ones). ``None`` when there is no checklist to show: the question is
        in no group, is answered, or the checklist was answered already.
        """
        protocol = self.service.protocol_for(screening)
        items = checklist(protocol, screening.state)
        conversation = self.conversation(context)
        ahead = conversation.prefill.items if conversation.prefill else {}
        if not items or items[0].id in ahead:
            return None
        marks = expected_marks(protocol, [q.id for q in items])
        phase = conversation.phase
        if isinstance(phase, ChecklistHeld) and phase.about(screening):
            marks.update({qid: mark for qid, mark in phase.marks.items() if qid in marks})
        return marks

    async def record(self, prepared: Outcome | Planned, update_id: int | None) -> Outcome:
        """Store a step the engine planned on the event loop, in a database thread.

        Anything else (a hint, a refusal, a question to confirm) is the outcome as it is.
        """
        if isinstance(prepared, Planned):
            return await self.db(self.service.store, prepared, update_id=update_id)
        return prepared

    def close(self) -> None:
        """Let the database threads finish their calls and end."""
        if self.threads is not None:
            self.threads.shutdown(wait=True)
