"""The Telegram adapter: updates in, service calls, messages out.

Handlers hold no screening state: everything is read from and written to the database through
:class:`bot.service.ScreeningService`. What a chat is *about to* do (a value awaiting
confirmation, a reason being typed) lives in ``chat_data`` only until it is confirmed, because
nothing is recorded before that.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar

from telegram import BotCommand, CallbackQuery, Update
from telegram import Message as TelegramMessage
from telegram.constants import ChatType, MessageLimit
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.callbacks import Action, Callback, decode
from bot.i18n import REASONS, t
from bot.keyboards import Button, Keyboard, button, keyboard
from bot.ordering import PerChatUpdateProcessor
from bot.outgoing import remove_buttons, send_text
from bot.service import (
    SIGN_MEANING,
    AlreadyProcessed,
    ConfirmFirst,
    Conflict,
    NeedsReason,
    Outcome,
    Reask,
    Recorded,
    Refused,
    ScreeningService,
    can_access,
    can_decide,
    can_work_on,
    withdraw_access,
)
from bot.settings import Settings
from flows import (
    UNKNOWN,
    AnswerValue,
    Invalid,
    Parsed,
    Protocol,
    Status,
    current_question,
    verdict_of,
)
from flows.batch import parse_batch
from flows.dialog import (
    ELIGIBLE,
    EXCLUDED,
    NEEDS_REVIEW,
    PENDING,
    missing,
    previous_question,
    relevant_questions,
)
from flows.messages import msg, render
from flows.render import (
    answer_text,
    outcome_text,
    question_text,
    short_title,
    summary,
    where_it_stands,
)
from flows.schema import ChoiceQuestion, Question, YesNoQuestion
from flows.text import Lang, as_lang
from flows.values import value_from_json, value_to_json
from reports.exporters import transcript_json, transcript_pdf
from reports.transcript import build_transcript
from storage.records import CloseKind, Role, Screening, Staff, StorageUnavailable

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Markup = Keyboard | None

COMMANDS: dict[Lang, list[tuple[str, str]]] = {
    "en": [
        ("new", "Start a screening"),
        ("resume", "My unfinished screenings"),
        ("status", "Where the screening stands"),
        ("back", "Change an earlier answer"),
        ("cancel", "Abandon the screening"),
        ("review", "Screenings awaiting a decision"),
        ("help", "How to use the bot"),
        ("language", "English / 中文"),
        ("staff", "Manage staff (admins)"),
        ("start", "Who I am"),
    ],
    "zh": [
        ("new", "开始筛选"),
        ("resume", "未完成的筛选"),
        ("status", "当前进度"),
        ("back", "修改之前的答案"),
        ("cancel", "放弃筛选"),
        ("review", "待裁定的筛选"),
        ("help", "使用说明"),
        ("language", "English / 中文"),
        ("staff", "管理人员（管理员）"),
        ("start", "我是谁"),
    ],
}


_P = ParamSpec("_P")
_T = TypeVar("_T")


def clip(text: str) -> str:
    """Keep a message within Telegram's length limit."""
    limit = MessageLimit.MAX_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(text: str, callback: Callback) -> Button:
    return button(text, callback.encode())


def _user_data(context: Context) -> dict[Any, Any]:
    data = context.user_data
    assert data is not None
    return data


def _chat_data(context: Context) -> dict[Any, Any]:
    data = context.chat_data
    assert data is not None
    return data


class PrescreenBot:
    """All handlers of the bot, bound to one service."""

    def __init__(self, service: ScreeningService, settings: Settings) -> None:
        self.service = service
        self.repo = service.repo
        self.settings = settings
        threads = settings.db_threads
        self._db = (
            ThreadPoolExecutor(threads, thread_name_prefix="prescreen-db") if threads else None
        )

    async def db(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Make a database call, in a worker thread when the settings give threads.

        On PostgreSQL every statement is a round trip: made on the event loop, it would hold up
        every other chat's update until the database answers; from a worker thread the loop
        goes on with them meanwhile. One chat's updates wait for each other
        (``bot.ordering``), so its calls stay in order either way.
        """
        if self._db is None:
            return call(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, partial(call, *args, **kwargs))

    # --- context helpers ----------------------------------------------------------------------

    def lang(self, update: Update, context: Context) -> Lang:
        """The user's chosen language, else their Telegram language."""
        chosen = _user_data(context).get("lang")
        if chosen in ("en", "zh"):
            return chosen  # type: ignore[no-any-return]
        user = update.effective_user
        return as_lang(user.language_code if user else None)

    @staticmethod
    def staff(context: Context) -> Staff:
        """The staff member behind the update (set by :meth:`gate`)."""
        staff: Staff = _user_data(context)["staff"]
        return staff

    def current(self, context: Context) -> Screening | None:
        """The screening the staff member is working on, if still open (read by the gate)."""
        staff = self.staff(context)
        screening: Screening | None = _user_data(context).get("current")
        if screening is None or not screening.unfinished or not can_work_on(staff, screening):
            return None
        return screening

    async def screening(self, context: Context, screening_id: int) -> Screening | None:
        """A screening by id (the gate has read the current one already)."""
        current: Screening | None = _user_data(context).get("current")
        if current is not None and current.id == screening_id:
            return current
        return await self.db(self.repo.get_screening, screening_id)

    async def send(
        self, update: Update, context: Context, text: str, markup: Markup = None
    ) -> None:
        """Send a message to the chat the update came from."""
        chat = update.effective_chat
        assert chat is not None
        await send_text(context.bot, chat.id, clip(text), markup)

    # --- access gate --------------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Runs first for every update: private chats only, drop redeliveries, refuse strangers."""
        user, chat = update.effective_user, update.effective_chat
        if user is None:
            raise ApplicationHandlerStop
        # One query: the sender, the screening they work on, and whether this is a redelivery.
        visitor = await self.db(self.repo.visitor, user.id, update.update_id)
        if visitor.seen:
            # Handled before (Telegram redelivers after a timeout): the first delivery got the
            # reply and the tap its acknowledgement, which Telegram refuses a second time.
            log.info("update %s redelivered: ignored", update.update_id)
            raise ApplicationHandlerStop
        if chat is None or chat.type != ChatType.PRIVATE:
            await self._refuse_group(update, context)
            await self.mark_processed(update, context)
            raise ApplicationHandlerStop
        staff = visitor.staff
        if staff is None or not staff.active:
            log.info("update %s from %s, who is not staff: refused", update.update_id, user.id)
            text = t("stranger", self.lang(update, context), id=user.id)
            if update.callback_query:
                await _acknowledge(update.callback_query, text[:200], alert=True)
            else:
                await self.send(update, context, text)
            await self.mark_processed(update, context)
            raise ApplicationHandlerStop
        _user_data(context).update(staff=staff, current=visitor.current)

    async def _refuse_group(self, update: Update, context: Context) -> None:
        """Say once per chat that the bot works only in private chats; record nothing.

        In a group every member's messages arrive in one chat: a reason or a code one member
        was asked for could be typed by another, and screening data would be shown to all.
        """
        chat = update.effective_chat
        log.info("update %s from a %s chat: refused", update.update_id, chat and chat.type)
        if update.callback_query is not None:
            await _acknowledge(update.callback_query)  # the bot sends no buttons there
            return
        chat_data = context.chat_data
        if chat is None or chat_data is None or chat_data.get("told_private"):
            return
        chat_data["told_private"] = True
        try:
            await send_text(context.bot, chat.id, t("private_only", self.lang(update, context)))
        except TelegramError:
            log.info("could not tell chat %s that the bot works in private chats", chat.id)

    async def mark_processed(self, update: Update, context: Context) -> None:
        """Runs last for every update that got this far: a redelivery of it is ignored.

        An update that recorded something claimed its id in that transaction already; this
        covers the others (a question shown again, a hint, a list), whose redelivery would
        otherwise be answered twice.
        """
        if _user_data(context).get("claimed") == update.update_id:
            return  # recorded with what it changed, in one transaction
        try:
            await self.db(self.repo.mark_processed, update.update_id)
        except StorageUnavailable:
            # The update was answered (an apology, if the database failed it); a redelivery
            # might be answered again, which is better than a second apology now.
            log.warning("could not mark update %s as processed", update.update_id)

    # --- rendering ----------------------------------------------------------------------------

    def screen(self, screening: Screening, lang: Lang) -> tuple[str, Markup]:
        """The current question with its buttons, or the outcome with its actions."""
        protocol = self.service.protocol_for(screening)
        state = screening.state
        sid, rev = screening.id, screening.row_version
        question = current_question(protocol, state)
        if question is not None:
            text = f"[{screening.code}] " + question_text(protocol, state, lang)
            if question.id in state.answers:
                text += "\n" + t(
                    "current_answer",
                    lang,
                    answer=answer_text(protocol, question.id, state.answers[question.id], lang),
                )
            qi = protocol.question_index[question.id]
            rows: list[list[Button]] = []
            if isinstance(question, YesNoQuestion):
                rows.append(
                    [
                        _button(t("b_yes", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:y")),
                        _button(t("b_no", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:n")),
                    ]
                )
            elif isinstance(question, ChoiceQuestion):
                buttons = [
                    _button(o.text.get(lang), Callback(Action.ANSWER, sid, rev, f"{qi}:o{i}"))
                    for i, o in enumerate(question.options)
                ]
                short = all(len(o.text.get(lang)) <= 4 for o in question.options)
                rows += [buttons] if short else [[b] for b in buttons]
            last = [_button(t("b_unknown", lang), Callback(Action.ANSWER, sid, rev, f"{qi}:u"))]
            if previous_question(protocol, screening.state) is not None:
                last.append(
                    _button(t("b_back", lang), Callback(Action.PREVIOUS, sid, rev, str(qi)))
                )
            rows.append(last)
            return text, keyboard(rows)
        verdict = verdict_of(protocol, state)
        text = (
            f"[{screening.code}] {outcome_text(protocol, state, verdict, lang)}\n\n"
            f"{summary(protocol, verdict, lang)}"
        )
        correct = _button(t("b_correct", lang), Callback(Action.CORRECT, sid, rev))
        results = [_button(t("b_results", lang), Callback(Action.RESULTS, sid, rev))]
        awaited = (protocol, state.answers, verdict)
        actions: dict[str, tuple[str, list[Button]]] = {
            EXCLUDED: (
                "excluded_actions",
                [
                    _button(
                        t("b_confirm_exclusion", lang), Callback(Action.CONFIRM_EXCLUSION, sid, rev)
                    )
                ],
            ),
            NEEDS_REVIEW: ("review_waiting", results if missing(*awaited) else []),
            PENDING: ("pending_actions", results),
            ELIGIBLE: (
                "sign_prompt",
                [_button(t("b_sign", lang), Callback(Action.SIGN, sid, rev))],
            ),
        }
        key, buttons = actions[state.at]
        text += "\n\n" + t(key, lang)
        rows = [[*buttons, correct]]
        if state.at in (PENDING, NEEDS_REVIEW):
            rows.append(
                [_button(t("b_not_completed", lang), Callback(Action.NOT_COMPLETED, sid, rev))]
            )
        return text, keyboard(rows)

    async def show(
        self, update: Update, context: Context, screening: Screening, prefix: str = ""
    ) -> None:
        """Send the screening's current screen, with an optional first line."""
        text, markup = self.screen(screening, self.lang(update, context))
        await self.send(update, context, f"{prefix}\n\n{text}" if prefix else text, markup)

    # --- outcomes -----------------------------------------------------------------------------

    async def after(
        self,
        update: Update,
        context: Context,
        outcome: Outcome,
        *,
        screening: Screening,
        hold: dict[str, Any] | None = None,
        echo_prefix: str = "",
    ) -> None:
        """Tell the user what happened and show what comes next."""
        if not isinstance(outcome, Recorded | AlreadyProcessed) and await self.db(
            self.repo.seen_update, update.update_id
        ):
            # A redelivery of an update another process has just recorded, read after that
            # write: its hint, prompt or conflict would answer a question already answered.
            return
        lang = self.lang(update, context)
        chat = _chat_data(context)
        if isinstance(outcome, Recorded):
            _user_data(context)["claimed"] = update.update_id
        match outcome:
            case Recorded(screening=stored, echo=echo):
                lines = [echo_prefix] if echo_prefix else []
                if echo is not None:
                    lines.append(t("saved", lang, echo=render(echo, lang)))
                stored, more = await self._apply_prefills(update, context, stored)
                lines += more
                await self._notify_review(context, screening, stored)
                await self.show(update, context, stored, "\n".join(lines))
            case Reask(hint=hint):
                await self.send(update, context, render(hint, lang))
            case ConfirmFirst(question_id=qid, parsed=parsed):
                assert hold is not None and parsed.confirm is not None
                chat["hold"] = {**hold, "qid": qid, "confirmed": True}
                sid, rev = screening.id, screening.row_version
                markup = keyboard(
                    [
                        [
                            _button(t("b_record", lang), Callback(Action.RECORD, sid, rev, "one")),
                            _button(t("b_retype", lang), Callback(Action.RETYPE, sid, rev)),
                        ]
                    ]
                )
                await self.send(
                    update,
                    context,
                    t("confirm_value", lang, question=render(parsed.confirm, lang)),
                    markup,
                )
            case NeedsReason(question_id=qid, previous=previous, value=value):
                assert hold is not None
                chat["hold"] = {
                    **hold,
                    "qid": qid,
                    "value": value_to_json(value),
                    "confirmed": True,
                }
                await self._ask_reason(update, context, screening, qid, previous, value)
            case Refused(message=message, screening=current):
                await self.show(update, context, current, render(message, lang))
            case Conflict(screening=current):
                await self.show(
                    update, context, current, t("changed_elsewhere", lang, code=current.code)
                )
            case AlreadyProcessed():
                pass

    async def _ask_reason(
        self,
        update: Update,
        context: Context,
        screening: Screening,
        qid: str,
        previous: AnswerValue,
        value: AnswerValue,
    ) -> None:
        lang = self.lang(update, context)
        protocol = self.service.protocol_for(screening)
        sid, rev = screening.id, screening.row_version
        rows = [
            [_button(t(key, lang), Callback(Action.REASON, sid, rev, str(i)))]
            for i, key in enumerate(REASONS)
        ]
        rows.append([_button(t("b_other", lang), Callback(Action.REASON, sid, rev, "o"))])
        text = t(
            "reason_ask",
            lang,
            question=protocol.questions_by_id[qid].label.get(lang),
            old=answer_text(protocol, qid, previous, lang),
            new=answer_text(protocol, qid, value, lang),
        )
        await self.send(update, context, text, keyboard(rows))

    async def _apply_prefills(
        self, update: Update, context: Context, screening: Screening
    ) -> tuple[Screening, list[str]]:
        """Record values typed earlier in one message as their questions come up."""
        chat = _chat_data(context)
        prefill = chat.get("prefill")
        lines: list[str] = []
        if not prefill or prefill["sid"] != screening.id:
            return screening, lines
        lang = self.lang(update, context)
        protocol = self.service.protocol_for(screening)
        screening, done = await self.db(
            self.service.answer_prefilled,
            screening,
            prefill["items"],
            actor=self.staff(context).telegram_id,
        )
        for qid, outcome in done:
            echo = (
                render(outcome.echo, lang)
                if outcome.echo
                else answer_text(protocol, qid, outcome.screening.state.answers[qid], lang)
            )
            lines.append(
                t(
                    "prefilled",
                    lang,
                    label=protocol.questions_by_id[qid].label.get(lang),
                    echo=echo,
                )
            )
        if not prefill["items"]:
            chat.pop("prefill", None)
        return screening, lines

    async def _notify_review(self, context: Context, before: Screening, after: Screening) -> None:
        """Tell investigators when a screening starts waiting for their decision."""
        if after.status != Status.NEEDS_REVIEW.value or before.status == after.status:
            return
        for member in await self.db(self.repo.list_staff):
            if member.role is Role.INVESTIGATOR and can_access(member, after):
                try:
                    await send_text(
                        context.bot, member.telegram_id, t("notify_review", "en", code=after.code)
                    )
                except TelegramError:
                    log.warning("could not notify investigator %s", member.telegram_id)

    # --- commands -----------------------------------------------------------------------------

    async def cmd_start(self, update: Update, context: Context) -> None:
        """/start: who I am and what I can do."""
        lang, staff = self.lang(update, context), self.staff(context)
        await self.send(
            update,
            context,
            t(
                "welcome",
                lang,
                name=html.escape(staff.display_name),
                role=staff.role.value,
                help=t("help", lang),
            ),
        )

    async def cmd_help(self, update: Update, context: Context) -> None:
        """/help."""
        await self.send(update, context, t("help", self.lang(update, context)))

    async def cmd_new(self, update: Update, context: Context) -> None:
        """/new [CODE]: choose the trial if several, then the screening code."""
        lang = self.lang(update, context)
        protocols = self.service.catalog.current()
        if len(protocols) > 1 and not context.args:
            rows = [
                [_button(p.title.get(lang)[:60], Callback(Action.TRIAL, 0, 0, str(i)))]
                for i, p in enumerate(protocols)
            ]
            await self.send(update, context, t("choose_trial", lang), keyboard(rows))
            return
        if context.args:
            await self._begin(update, context, protocols[0], " ".join(context.args))
            return
        _chat_data(context)["await"] = {"kind": "code", "protocol": protocols[0].digest}
        await self.send(update, context, t("ask_code", lang))

    async def _begin(self, update: Update, context: Context, protocol: Protocol, code: str) -> None:
        lang, staff = self.lang(update, context), self.staff(context)
        created = await self.db(
            self.service.begin,
            code,
            protocol,
            actor=staff.telegram_id,
            update_id=update.update_id,
            site=staff.site,
        )
        if isinstance(created, AlreadyProcessed):
            return  # a redelivered /new, already handled
        if not isinstance(created, Screening):
            _chat_data(context)["await"] = {"kind": "code", "protocol": protocol.digest}
            await self.send(update, context, render(created, lang) + "\n" + t("ask_code", lang))
            return
        await self.show(
            update,
            context,
            created,
            t("started", lang, code=created.code, trial=short_title(protocol, lang)),
        )

    async def cmd_resume(self, update: Update, context: Context) -> None:
        """/resume: unfinished screenings as buttons."""
        lang, staff = self.lang(update, context), self.staff(context)
        found = await self.db(self.repo.unfinished, staff.telegram_id, limit=10)
        if not found:
            await self.send(update, context, t("no_unfinished", lang))
            return
        rows = []
        now = datetime.now(UTC)
        for s in found:
            # Short enough for a phone's button: code, where it stands, how long ago.
            where = where_it_stands(self.service.protocol_for(s), s.state, lang)
            label = f"{s.code} · {where} · {_ago(now - s.updated_at)}"
            rows.append([_button(label, Callback(Action.OPEN, s.id, s.row_version))])
        await self.send(update, context, t("unfinished", lang), keyboard(rows))

    async def cmd_status(self, update: Update, context: Context) -> None:
        """/status: the current screen."""
        screening = self.current(context)
        if screening is None:
            await self.send(update, context, t("no_current", self.lang(update, context)))
            return
        await self.show(update, context, screening)

    async def cmd_back(self, update: Update, context: Context) -> None:
        """/back: the answered questions, to pick one to change."""
        screening = self.current(context)
        if screening is None:
            await self.send(update, context, t("no_current", self.lang(update, context)))
            return
        await self._back_list(update, context, screening)

    async def _back_list(self, update: Update, context: Context, screening: Screening) -> None:
        lang = self.lang(update, context)
        protocol = self.service.protocol_for(screening)
        answers = screening.state.answers
        rows = [
            [
                _button(
                    f"{q.label.get(lang)}: {answer_text(protocol, q.id, answers[q.id], lang)}",
                    Callback(
                        Action.GO_TO,
                        screening.id,
                        screening.row_version,
                        str(protocol.question_index[q.id]),
                    ),
                )
            ]
            for q in relevant_questions(protocol, answers)
            if q.id in answers
        ]
        if not rows:
            await self.send(update, context, t("nothing_to_change", lang))
            return
        await self.send(update, context, t("back_choose", lang), keyboard(rows))

    async def cmd_cancel(self, update: Update, context: Context) -> None:
        """/cancel: abandon the current screening, with a reason."""
        lang = self.lang(update, context)
        screening = self.current(context)
        if screening is None:
            await self.send(update, context, t("no_current", lang))
            return
        _chat_data(context)["await"] = {
            "kind": "cancel",
            "sid": screening.id,
            "rev": screening.row_version,
        }
        await self.send(update, context, t("cancel_reason", lang, code=screening.code))

    async def cmd_review(self, update: Update, context: Context) -> None:
        """/review: screenings awaiting an investigator's decision."""
        lang, staff = self.lang(update, context), self.staff(context)
        if staff.role not in (Role.INVESTIGATOR, Role.ADMIN):
            await self.send(update, context, t("role_needed", lang, role="investigator"))
            return
        waiting = [s for s in await self.db(self.repo.needing_review) if can_access(staff, s)]
        if not waiting:
            await self.send(update, context, t("review_none", lang))
            return
        rows = [
            [_button(f"{s.code} · {s.protocol_id}", Callback(Action.REVIEW, s.id, s.row_version))]
            for s in waiting
        ]
        await self.send(update, context, t("review_list", lang), keyboard(rows))

    async def cmd_export(self, update: Update, context: Context) -> None:
        """/export [CODE]: the transcript of the current (or a named) screening, PDF and JSON."""
        lang, staff = self.lang(update, context), self.staff(context)
        if context.args:
            screening = await self.db(self.repo.find_screening, context.args[0])
        elif staff.current_screening_id is not None:
            screening = await self.screening(context, staff.current_screening_id)
        else:
            screening = None
        if screening is None:
            await self.send(update, context, t("export_usage", lang))
            return
        if not can_access(staff, screening):
            await self.send(update, context, t("not_yours", lang, code=screening.code))
            return
        transcript = await self.db(
            build_transcript,
            self.repo,
            screening,
            self.service.protocol_for(screening),
            timezone=self.settings.timezone,
            now=datetime.now(UTC),
        )
        chat = update.effective_chat
        assert chat is not None
        data = json.dumps(transcript_json(transcript), ensure_ascii=False, indent=1)
        await context.bot.send_document(
            chat.id,
            transcript_pdf(transcript),
            filename=f"{screening.code}.pdf",
            caption=t(
                "export_failed" if transcript.failures else "export_caption",
                lang,
                code=screening.code,
            ),
        )
        await context.bot.send_document(chat.id, data.encode(), filename=f"{screening.code}.json")

    async def cmd_language(self, update: Update, context: Context) -> None:
        """/language: English or Chinese."""
        rows = [
            [
                _button("English", Callback(Action.LANGUAGE, 0, 0, "en")),
                _button("中文", Callback(Action.LANGUAGE, 0, 0, "zh")),
            ]
        ]
        await self.send(
            update,
            context,
            t("language_choose", self.lang(update, context)),
            keyboard(rows),
        )

    async def cmd_staff(self, update: Update, context: Context) -> None:
        """/staff list | add ID NAME [ROLE] | remove ID (admins)."""
        lang, staff = self.lang(update, context), self.staff(context)
        if staff.role is not Role.ADMIN:
            await self.send(update, context, t("role_needed", lang, role="admin"))
            return
        args = list(context.args or [])
        if args[:1] == ["list"]:
            lines = [_staff_line(member, lang) for member in await self.db(self.repo.list_staff)]
            await self.send(update, context, "\n".join(lines))
            return
        if len(args) >= 3 and args[0] == "add" and args[1].isdecimal():
            role = Role.COORDINATOR
            if args[-1] in {r.value for r in Role}:
                role = Role(args.pop())
            name = " ".join(args[2:])
            saved = await self.db(self.repo.save_staff, Staff(int(args[1]), name, role))
            await self.send(update, context, _staff_line(saved, lang))
            return
        if len(args) == 2 and args[0] == "remove" and args[1].isdecimal():
            removed = await self.db(withdraw_access, self.repo, int(args[1]))
            text = _staff_line(removed, lang) if removed else t("staff_unknown", lang, id=args[1])
            await self.send(update, context, text)
            return
        await self.send(update, context, t("staff_usage", lang))

    async def on_unknown_command(self, update: Update, context: Context) -> None:
        """A command the bot does not have."""
        await self.send(update, context, t("unknown_command", self.lang(update, context)))

    # --- free text ----------------------------------------------------------------------------

    async def on_text(self, update: Update, context: Context) -> None:
        """Typed text: an awaited code or reason, several lab values, or an answer."""
        message = update.effective_message
        assert message is not None and message.text is not None
        text = message.text.strip()
        lang, staff = self.lang(update, context), self.staff(context)
        awaiting = _chat_data(context).pop("await", None)
        if awaiting is not None:
            await self._awaited(update, context, awaiting, text)
            return
        screening = self.current(context)
        if screening is None:
            reviewing = _chat_data(context).get("reviewing")
            await self.send(
                update, context, t("review_use_buttons" if reviewing else "no_current", lang)
            )
            return
        if screening.state.finished:
            await self.show(update, context, screening)
            return
        protocol = self.service.protocol_for(screening)
        batch = parse_batch(protocol, text)
        if batch is not None:
            await self._offer_batch(update, context, screening, protocol, batch)
            return
        outcome = await self.db(
            self.service.answer_text,
            screening,
            text,
            actor=staff.telegram_id,
            update_id=update.update_id,
        )
        await self.after(
            update,
            context,
            outcome,
            screening=screening,
            hold={"sid": screening.id, "rev": screening.row_version, "raw": text},
        )

    async def _awaited(
        self, update: Update, context: Context, awaiting: dict[str, Any], text: str
    ) -> None:
        lang, staff = self.lang(update, context), self.staff(context)
        kind = awaiting["kind"]
        if kind == "code":
            protocol = self.service.catalog.by_digest(awaiting["protocol"])
            assert protocol is not None
            await self._begin(update, context, protocol, text)
            return
        screening = await self.screening(context, awaiting["sid"])
        if screening is None or screening.row_version != awaiting["rev"]:
            if screening is not None:
                await self.show(
                    update, context, screening, t("outdated", lang, code=screening.code)
                )
            return
        if kind in ("cancel", "not_completed"):
            closed = await self.db(
                self.service.close,
                screening,
                "cancelled" if kind == "cancel" else "not_completed",
                actor=staff.telegram_id,
                reason=text,
                update_id=update.update_id,
            )
            if isinstance(closed, Screening):
                key = "cancelled" if kind == "cancel" else "closed_not_completed"
                await self.send(update, context, t(key, lang, code=closed.code))
            else:
                await self.after(update, context, closed, screening=screening)
        elif kind == "reason":
            await self._answer_held(update, context, screening, awaiting["hold"], text)
        elif kind == "decision":
            await self._decide(
                update, context, screening, awaiting["criterion"], awaiting["approve"], text
            )

    async def _offer_batch(
        self,
        update: Update,
        context: Context,
        screening: Screening,
        protocol: Protocol,
        batch: Sequence[tuple[str, str, Any]],
    ) -> None:
        lang = self.lang(update, context)
        problems = [
            t(
                "batch_invalid",
                lang,
                label=protocol.questions_by_id[q].label.get(lang),
                hint=render(r.hint, lang),
            )
            for q, _, r in batch
            if isinstance(r, Invalid)
        ]
        if problems:
            await self.send(update, context, "\n".join(problems))
            return
        items = [
            f"• {protocol.questions_by_id[q].label.get(lang)}: {render(r.echo, lang)}"
            + (" ⚠" if isinstance(r, Parsed) and r.confirm else "")
            for q, _, r in batch
        ]
        _chat_data(context)["hold"] = {
            "sid": screening.id,
            "rev": screening.row_version,
            "batch": [[q, raw] for q, raw, _ in batch],
        }
        sid, rev = screening.id, screening.row_version
        markup = keyboard(
            [
                [
                    _button(t("b_record", lang), Callback(Action.RECORD, sid, rev, "batch")),
                    _button(t("b_retype", lang), Callback(Action.RETYPE, sid, rev)),
                ]
            ]
        )
        await self.send(update, context, t("batch", lang, items="\n".join(items)), markup)

    # --- buttons ------------------------------------------------------------------------------

    async def on_button(self, update: Update, context: Context) -> None:
        """Every inline button: checked against the screening's current revision first.

        Button data comes from the client and is checked like typed text: it must be one of the
        buttons of the message it was tapped on, decode to a known action whose indices exist,
        and concern a screening this person may act on. Anything else is refused as outdated,
        quietly, with nothing recorded.
        """
        query = update.callback_query
        assert query is not None
        lang, staff = self.lang(update, context), self.staff(context)
        data = decode(query.data) if _offered(query) else None
        if data is None:
            await self._refuse_tap(query, lang, "not a button of its message")
            return
        if data.action is Action.LANGUAGE:
            _user_data(context)["lang"] = data.arg
            await _acknowledge(query)
            await self.send(update, context, t("language_set", as_lang(data.arg)))
            return
        if data.action is Action.TRIAL:
            protocols = self.service.catalog.current()
            if data.index() >= len(protocols):
                await self._refuse_tap(query, lang, "no such trial")
                return
            await _acknowledge(query)
            _chat_data(context)["await"] = {
                "kind": "code",
                "protocol": protocols[data.index()].digest,
            }
            await self.send(update, context, t("ask_code", lang))
            return
        screening = await self.screening(context, data.screening_id)
        if screening is None or not can_access(staff, screening):
            log.warning(
                "tap %r by %s refused: screening not visible", query.data, staff.telegram_id
            )
            await _acknowledge(query, t("not_yours", lang, code="?"), alert=True)
            return
        if not _fits(self.service.protocol_for(screening), data):
            await self._refuse_tap(query, lang, "index outside the protocol")
            return
        if data.action in {Action.OPEN, Action.REVIEW}:  # opening a screening: any revision
            await _acknowledge(query)
            if data.action is Action.REVIEW:
                await self._review_screen(update, context, screening)
            elif can_work_on(staff, screening):
                await self.db(self.repo.set_current_screening, staff.telegram_id, screening.id)
                await self.show(update, context, screening)
            else:  # someone else's: to read, not to answer
                text, _ = self.screen(screening, lang)
                await self.send(update, context, t("view_only", lang) + "\n\n" + text)
            return
        if screening.row_version != data.revision or not screening.unfinished:
            if await self.db(self.repo.seen_update, update.update_id):
                # This very tap was just recorded by another process (a redelivery raced the
                # first delivery): it is not outdated, it is done, and was acknowledged there.
                return
            await _acknowledge(query, t("outdated_short", lang))
            await self.show(update, context, screening, t("outdated", lang, code=screening.code))
            return
        if data.action is Action.DECIDE:
            if not can_decide(staff, screening):
                await self._refuse_tap(query, lang, "decision by someone without the role")
                return
        elif not can_work_on(staff, screening):
            await self._refuse_tap(query, lang, "someone else's screening")
            await self.send(update, context, render(msg("not_owner", code=screening.code), lang))
            return
        elif screening.id != staff.current_screening_id:
            # A button left in the chat from a screening put aside: acting on it would change a
            # screening the coordinator is not looking at.
            await _acknowledge(query, t("outdated_short", lang))
            await self.send(update, context, t("other_screening", lang, code=screening.code))
            return
        # Answering the tap and removing the spent buttons need nothing from the database, so
        # they do not wait for each other or for the next question: all three travel to
        # Telegram together (they start at the handler's first wait, when the answer is
        # recorded), and the next question arrives one round trip after the tap, not three.
        spent = asyncio.gather(_acknowledge(query), _remove_keyboard(query))
        try:
            await self._act(update, context, screening, data)
        finally:
            await spent

    async def _refuse_tap(self, query: CallbackQuery, lang: Lang, why: str) -> None:
        """Refuse a tap that is not a live button of this person's: stop its spinner, log it."""
        log.warning("tap %r by %s refused: %s", query.data, query.from_user.id, why)
        await _acknowledge(query, t("outdated_short", lang))

    async def _act(
        self, update: Update, context: Context, screening: Screening, data: Callback
    ) -> None:
        staff, lang = self.staff(context), self.lang(update, context)
        actor, uid = staff.telegram_id, update.update_id
        protocol = self.service.protocol_for(screening)
        chat = _chat_data(context)
        match data.action:
            case Action.ANSWER:
                question = protocol.questions[data.index()]
                value = _tapped_value(question, data.choice)
                assert value is not None  # checked by _fits before
                echo = answer_text(protocol, question.id, value, lang)
                tapped = f"[tap] {echo}"  # nothing was typed: record the label that was tapped
                outcome = await self.db(
                    self.service.answer_value,
                    screening,
                    question.id,
                    value,
                    tapped,
                    actor=actor,
                    update_id=uid,
                )
                await self.after(
                    update,
                    context,
                    outcome,
                    screening=screening,
                    hold={
                        "sid": screening.id,
                        "rev": screening.row_version,
                        "raw": tapped,
                        "tapped": True,
                    },
                    echo_prefix=t("saved", lang, echo=echo),
                )
            case Action.PREVIOUS | Action.GO_TO:
                target = (
                    previous_question(protocol, screening.state)
                    if data.action is Action.PREVIOUS
                    else protocol.questions[data.index()].id
                )
                if target is None:
                    await self.show(update, context, screening)
                    return
                outcome = await self.db(
                    self.service.go_back, screening, target, actor=actor, update_id=uid
                )
                await self.after(update, context, outcome, screening=screening)
            case Action.CORRECT:
                await self._back_list(update, context, screening)
            case Action.RECORD:
                hold = chat.pop("hold", None)
                if hold is None or hold.get("sid") != screening.id:
                    await self.show(update, context, screening)
                elif data.arg == "batch":
                    await self._record_batch(update, context, screening, hold["batch"])
                else:
                    await self._answer_held(update, context, screening, hold, None)
            case Action.RETYPE:
                chat.pop("hold", None)
                await self.show(update, context, screening)
            case Action.REASON:
                hold = chat.pop("hold", None)
                if hold is None or hold.get("sid") != screening.id:
                    await self.show(update, context, screening)
                elif data.arg == "o":
                    chat["await"] = {
                        "kind": "reason",
                        "sid": screening.id,
                        "rev": screening.row_version,
                        "hold": hold,
                    }
                    await self.send(update, context, t("reason_typed_ask", lang))
                else:
                    reason = t(REASONS[int(data.arg)], "en")
                    await self._answer_held(update, context, screening, hold, reason)
            case Action.CONFIRM_EXCLUSION | Action.SIGN:
                kind: CloseKind = (
                    "exclusion_confirmed" if data.action is Action.CONFIRM_EXCLUSION else "signed"
                )
                meaning = SIGN_MEANING if kind == "signed" else None
                closed = await self.db(
                    self.service.close, screening, kind, actor=actor, reason=meaning, update_id=uid
                )
                if isinstance(closed, Screening):
                    key = "signed" if kind == "signed" else "exclusion_confirmed"
                    await self.send(
                        update, context, t(key, lang, code=closed.code, name=staff.display_name)
                    )
                else:
                    await self.after(update, context, closed, screening=screening)
            case Action.NOT_COMPLETED:
                chat["await"] = {
                    "kind": "not_completed",
                    "sid": screening.id,
                    "rev": screening.row_version,
                }
                await self.send(update, context, t("not_completed_reason", lang))
            case Action.RESULTS:
                outcome = await self.db(
                    self.service.complete_pending, screening, actor=actor, update_id=uid
                )
                await self.after(update, context, outcome, screening=screening)
            case Action.DECIDE:
                verdict = data.choice
                criterion = protocol.criteria[data.index()]
                chat["await"] = {
                    "kind": "decision",
                    "sid": screening.id,
                    "rev": screening.row_version,
                    "criterion": criterion.id,
                    "approve": verdict == "a",
                }
                await self.send(
                    update,
                    context,
                    t(
                        "decision_reason",
                        lang,
                        number=criterion.number,
                        verdict=t("approved" if verdict == "a" else "rejected", lang),
                    ),
                )
            case _:
                await self.show(update, context, screening)

    async def _answer_held(
        self,
        update: Update,
        context: Context,
        screening: Screening,
        hold: dict[str, Any],
        reason: str | None,
    ) -> None:
        """Record a value that waited for confirmation or for a reason for change."""
        actor = self.staff(context).telegram_id
        if hold.get("tapped"):
            outcome = await self.db(
                self.service.answer_value,
                screening,
                hold["qid"],
                value_from_json(hold["value"]),
                hold["raw"],
                actor=actor,
                reason=reason,
                update_id=update.update_id,
            )
        else:
            outcome = await self.db(
                self.service.answer_text,
                screening,
                hold["raw"],
                actor=actor,
                confirmed=True,
                reason=reason,
                update_id=update.update_id,
            )
        await self.after(update, context, outcome, screening=screening, hold=hold)

    async def _record_batch(
        self, update: Update, context: Context, screening: Screening, items: list[list[str]]
    ) -> None:
        """Record the values of one message; those for later questions wait for them."""
        _chat_data(context)["prefill"] = {
            "sid": screening.id,
            "items": {qid: raw for qid, raw in items},
        }
        lang = self.lang(update, context)
        before = screening
        screening, lines = await self._apply_prefills(update, context, screening)
        await self._notify_review(context, before, screening)
        await self.show(update, context, screening, "\n".join(lines) or t("saved", lang, echo="—"))

    async def _review_screen(self, update: Update, context: Context, screening: Screening) -> None:
        lang, staff = self.lang(update, context), self.staff(context)
        if not can_decide(staff, screening):
            await self.send(update, context, t("role_needed", lang, role="investigator"))
            return
        protocol = self.service.protocol_for(screening)
        verdict = verdict_of(protocol, screening.state)
        # Typed text is not a decision: it is answered with a pointer to the buttons.
        _chat_data(context)["reviewing"] = screening.id
        rows = []
        for cv in verdict.awaiting_review:
            index = [c.id for c in protocol.criteria].index(cv.criterion_id)
            number = protocol.criteria[index].number
            rows.append(
                [
                    _button(
                        t("b_approve", lang, number=number),
                        Callback(Action.DECIDE, screening.id, screening.row_version, f"{index}:a"),
                    ),
                    _button(
                        t("b_reject", lang, number=number),
                        Callback(Action.DECIDE, screening.id, screening.row_version, f"{index}:r"),
                    ),
                ]
            )
        text = (
            f"[{screening.code}] {outcome_text(protocol, screening.state, verdict, lang)}"
            f"\n\n{summary(protocol, verdict, lang)}"
        )
        await self.send(update, context, text, keyboard(rows) if rows else None)

    async def _decide(
        self,
        update: Update,
        context: Context,
        screening: Screening,
        criterion_id: str,
        approve: bool,
        reason: str,
    ) -> None:
        lang, staff = self.lang(update, context), self.staff(context)
        outcome = await self.db(
            self.service.decide,
            screening,
            criterion_id,
            approve,
            reason,
            actor=staff.telegram_id,
            update_id=update.update_id,
        )
        if not isinstance(outcome, Recorded):
            await self.after(update, context, outcome, screening=screening)
            return
        protocol = self.service.protocol_for(screening)
        number = protocol.criteria_by_id[criterion_id].number
        await self.send(update, context, t("decided", lang, code=screening.code))
        try:
            await send_text(
                context.bot,
                screening.created_by,
                t(
                    "notify_decided",
                    "en",
                    name=staff.display_name,
                    code=screening.code,
                    number=number,
                    verdict=t("approved" if approve else "rejected", "en"),
                    reason=reason,
                ),
            )
        except TelegramError:
            log.warning("could not notify coordinator %s", screening.created_by)
        await self._review_screen(update, context, outcome.screening)

    # --- errors -------------------------------------------------------------------------------

    async def on_error(self, update: object, context: Context) -> None:
        """Log the traceback with a reference; apologise to the user with the same reference."""
        ref = uuid.uuid4().hex[:8]
        log.error("update failed (ref %s)", ref, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            lang = as_lang(update.effective_user.language_code if update.effective_user else None)
            # A database that is down or locked is worth saying as such: nothing was recorded,
            # and trying again shortly works (connections are re-established on their own).
            key = "db_unavailable" if isinstance(context.error, StorageUnavailable) else "error"
            try:
                await send_text(context.bot, update.effective_chat.id, t(key, lang, ref=ref))
            except TelegramError:
                log.warning("could not send the apology for ref %s", ref)

    # --- wiring -------------------------------------------------------------------------------

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add every handler to the application."""
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        app.add_handler(TypeHandler(Update, self.mark_processed), group=1)
        for name, callback in (
            ("start", self.cmd_start),
            ("help", self.cmd_help),
            ("new", self.cmd_new),
            ("resume", self.cmd_resume),
            ("status", self.cmd_status),
            ("back", self.cmd_back),
            ("cancel", self.cmd_cancel),
            ("review", self.cmd_review),
            ("language", self.cmd_language),
            ("export", self.cmd_export),
            ("staff", self.cmd_staff),
        ):
            app.add_handler(CommandHandler(name, callback))
        app.add_handler(MessageHandler(filters.COMMAND, self.on_unknown_command))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_error_handler(self.on_error)

    async def post_shutdown(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Let the database threads finish their calls and end."""
        if self._db is not None:
            self._db.shutdown(wait=True)

    @staticmethod
    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Register the command menu in both languages."""
        for lang, commands in COMMANDS.items():
            await app.bot.set_my_commands(
                [BotCommand(c, d) for c, d in commands],
                language_code=None if lang == "en" else lang,
            )


def _offered(query: CallbackQuery) -> bool:
    """Whether the tapped data is one of the buttons of the message it was tapped on.

    Telegram sends the message as it stands, buttons included, so a tap whose data is not
    among them was made up by the client. When Telegram no longer shows the bot the message (an
    old one), the revision and ownership checks alone decide.
    """
    message = query.message
    if message is None:  # inline mode, which the bot does not use
        return False
    if not isinstance(message, TelegramMessage) or not message.is_accessible:
        return True
    markup = message.reply_markup
    return markup is not None and any(
        button.callback_data == query.data for row in markup.inline_keyboard for button in row
    )


def _fits(protocol: Protocol, data: Callback) -> bool:
    """Whether the indices a button carries exist in the screening's protocol."""
    match data.action:
        case Action.ANSWER:
            if data.index() >= len(protocol.questions):
                return False
            return _tapped_value(protocol.questions[data.index()], data.choice) is not None
        case Action.GO_TO | Action.PREVIOUS:
            return data.index() < len(protocol.questions)
        case Action.DECIDE:
            return data.index() < len(protocol.criteria)
        case Action.REASON:
            return data.arg == "o" or int(data.arg) < len(REASONS)
    return True


def _tapped_value(question: Question, choice: str) -> AnswerValue | None:
    """The answer a button of ``question`` stands for; ``None`` if it has no such button."""
    if choice == "u":
        return UNKNOWN
    if isinstance(question, YesNoQuestion) and choice in {"y", "n"}:
        return choice == "y"
    if isinstance(question, ChoiceQuestion) and choice.startswith("o"):
        index = int(choice[1:])
        return question.options[index].id if index < len(question.options) else None
    return None


def _staff_line(staff: Staff, lang: Lang) -> str:
    return t(
        "staff_saved",
        lang,
        id=staff.telegram_id,
        name=staff.display_name,
        role=staff.role.value,
        state=t("active" if staff.active else "removed", lang),
    )


def _ago(delta: Any) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


async def _acknowledge(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Tell Telegram the tap was received (the app stops its spinner), with a short notice.

    The tap is handled whether or not this succeeds: a tap delivered late (after an outage)
    has an expired query, which Telegram refuses to answer, and that is no error of the tap.
    """
    try:
        await query.answer(text, show_alert=True if alert else None)
    except TelegramError as exc:
        log.info("could not acknowledge tap %s: %s", query.id, exc)


async def _remove_keyboard(query: CallbackQuery) -> None:
    """Remove a tapped message's buttons (they are spent); a message gone meanwhile is fine."""
    message = query.message
    if message is None:  # a message sent in inline mode, which the bot does not use
        return
    try:
        # Telegram refuses the edit of a message too old to change (an inaccessible one).
        await remove_buttons(query.get_bot(), message.chat.id, message.message_id)
    except TelegramError:
        log.debug("could not remove the keyboard of message %s", query.message)


def build_application(
    service: ScreeningService,
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    rate_limit: bool = True,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The python-telegram-bot application with every handler registered.

    Args:
        service: The screening use cases.
        settings: Token, Bot API URLs.
        request: A transport to use instead of HTTP (the tests' fake Bot API).
        rate_limit: Apply Telegram's rate limits (python-telegram-bot's ``AIORateLimiter``).

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
    handlers = PrescreenBot(service, settings)
    app = builder.post_init(handlers.post_init).post_shutdown(handlers.post_shutdown).build()
    handlers.register(app)
    return app


MISSING_TOKEN = (
    "No bot token: set PRESCREEN_BOT_TOKEN in .env or the environment. To get one, talk to "
    "@BotFather in Telegram, send /newbot, and copy the token it gives you "
    "(it looks like 123456789:AA…)."
)
