"""The bot's commands: /start, /help, /new, /resume, /status, /back, /cancel, /review and more."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from telegram import Update

from bot.access import can_access, withdraw_access
from bot.callbacks import Action, Callback
from bot.conversation import AwaitingCode, ChoosingTrial, Closing, ClosingReason
from bot.i18n import t
from bot.keyboards import Keyboard, keyboard, tap
from bot.passes import begin_pass
from bot.results import AlreadyProcessed
from bot.screens import ago, answered_rows, staff_line
from bot.shell import Context, Shell
from flows import Protocol, start, verdict_of
from flows.dialog import missing
from flows.messages import render
from flows.render import question_label, short_title, where_it_stands
from flows.text import Lang
from reports.exporters import transcript_json, transcript_pdf
from reports.transcript import build_transcript
from storage.records import Role, Screening, Staff


async def cmd_start(shell: Shell, update: Update, context: Context) -> None:
    """/start: who I am and what I can do."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    name = html.escape(staff.display_name)
    text = t("welcome", lang, name=name, role=staff.role.value, help=t("help", lang))
    await shell.send(update, context, text)


async def cmd_help(shell: Shell, update: Update, context: Context) -> None:
    """/help."""
    await shell.send(update, context, t("help", shell.lang(update, context)))


async def cmd_new(shell: Shell, update: Update, context: Context) -> None:
    """/new [CODE]: choose the trial if several, then the screening code."""
    lang = shell.lang(update, context)
    protocols = shell.service.catalog.current()
    code = " ".join(context.args) if context.args else None
    if len(protocols) > 1:
        phase = ChoosingTrial(code=code)
        await shell.keep(context, shell.conversation(context).but(phase=phase))
        await shell.send(
            update, context, t("choose_trials", lang), trial_chooser(protocols, phase, lang)
        )
        return
    if context.args:
        await begin(shell, update, context, protocols[0], " ".join(context.args))
        return
    await ask_code(shell, update, context, protocols[0])


def trial_chooser(protocols: Sequence[Protocol], phase: ChoosingTrial, lang: Lang) -> Keyboard:
    """The active trials, each ticked unless left out, and the button that starts the pass."""
    rows = [
        [
            tap(
                _clipped(f"{'☐' if p.id in phase.left_out else '☑'} {short_title(p, lang)}"),
                Callback(Action.TRIAL, 0, 0, str(i)),
            )
        ]
        for i, p in enumerate(protocols)
    ]
    ticked = sum(p.id not in phase.left_out for p in protocols)
    rows.append([tap(t("b_start_trials", lang, n=ticked), Callback(Action.TRIAL, 0, 0, "go"))])
    return keyboard(rows)


def _clipped(label: str, limit: int = 64) -> str:
    """A button's label, cut with "…" where a phone would cut it anyway."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


async def ask_code(
    shell: Shell, update: Update, context: Context, protocol: Protocol, *also: Protocol
) -> None:
    """Ask for the new screening's code; the next text is taken as the code."""
    phase = AwaitingCode(protocol_digest=protocol.digest, also=tuple(p.digest for p in also))
    await shell.keep(context, shell.conversation(context).but(phase=phase))
    await shell.send(update, context, t("ask_code", shell.lang(update, context)))


async def begin(
    shell: Shell, update: Update, context: Context, protocol: Protocol, code: str
) -> None:
    """Start a screening with ``code``; an unusable code is asked for again."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    created = await shell.db(
        shell.service.begin,
        code,
        protocol,
        actor=staff.telegram_id,
        update_id=update.update_id,
        site=staff.site,
        state=start(protocol),  # the engine on the loop; the thread only stores
    )
    if isinstance(created, AlreadyProcessed):
        return  # a redelivered /new, already handled
    if not isinstance(created, Screening):
        phase = AwaitingCode(protocol_digest=protocol.digest)
        await shell.keep(context, shell.conversation(context).but(phase=phase))
        await shell.send(update, context, render(created, lang) + "\n" + t("ask_code", lang))
        return
    trial = short_title(protocol, lang)
    await shell.show(update, context, created, t("started", lang, code=created.code, trial=trial))


async def begin_together(
    shell: Shell, update: Update, context: Context, protocols: Sequence[Protocol], code: str
) -> None:
    """Start a pass over several trials with ``code``; an unusable code is asked for again."""
    if len(protocols) == 1:
        await begin(shell, update, context, protocols[0], code)
        return
    lang, staff = shell.lang(update, context), shell.staff(context)
    created = await shell.db(
        begin_pass,
        shell.service,
        code,
        protocols,
        actor=staff.telegram_id,
        update_id=update.update_id,
        site=staff.site,
    )
    if isinstance(created, AlreadyProcessed):
        return
    if not isinstance(created, list):
        phase = AwaitingCode(
            protocol_digest=protocols[0].digest, also=tuple(p.digest for p in protocols[1:])
        )
        await shell.keep(context, shell.conversation(context).but(phase=phase))
        await shell.send(update, context, render(created, lang) + "\n" + t("ask_code", lang))
        return
    await shell.db(shell.repo.set_current_screening, staff.telegram_id, created[0].id)
    trials = "\n".join(
        f"• {s.code} ({short_title(p, lang)})" for s, p in zip(created, protocols, strict=True)
    )
    text = t("started_pass", lang, code=code.strip(), n=len(protocols), trials=trials)
    await shell.show(update, context, created[0], text)


async def cmd_resume(shell: Shell, update: Update, context: Context) -> None:
    """/resume: unfinished screenings as buttons."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    found = await shell.db(shell.repo.unfinished, staff.telegram_id, limit=10)
    if not found:
        await shell.send(update, context, t("no_unfinished", lang))
        return
    rows = []
    now = datetime.now(UTC)
    for s in found:
        # Short enough for a phone's button: code, where it stands, how long ago.
        where = where_it_stands(shell.service.protocol_for(s), s.state, lang)
        label = f"{s.code} · {where} · {ago(now - s.updated_at)}"
        rows.append([tap(label, Callback(Action.OPEN, s.id, s.row_version))])
    await shell.send(update, context, t("unfinished", lang), keyboard(rows))


async def cmd_pending(shell: Shell, update: Update, context: Context) -> None:
    """/pending: my screenings waiting for a result, the longest waiting first."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    found = await shell.db(shell.repo.waiting, "pending", staff.telegram_id)
    if not found:
        await shell.send(update, context, t("pending_none", lang))
        return
    rows = []
    now = datetime.now(UTC)
    for s in found:
        protocol = shell.service.protocol_for(s)
        awaited = missing(protocol, s.state.answers, verdict_of(protocol, s.state))
        labels = ", ".join(question_label(protocol, q, lang) for q in awaited)
        label = t("pending_item", lang, code=s.code, missing=labels, ago=ago(now - s.updated_at))
        rows.append([tap(label, Callback(Action.OPEN, s.id, s.row_version))])
    await shell.send(update, context, t("pending_list", lang), keyboard(rows))


async def cmd_status(shell: Shell, update: Update, context: Context) -> None:
    """/status: the current screen."""
    screening = shell.current(context)
    if screening is None:
        await shell.send(update, context, t("no_current", shell.lang(update, context)))
        return
    await shell.show(update, context, screening)


async def cmd_back(shell: Shell, update: Update, context: Context) -> None:
    """/back: the answered questions, to pick one to change."""
    screening = shell.current(context)
    if screening is None:
        await shell.send(update, context, t("no_current", shell.lang(update, context)))
        return
    await back_list(shell, update, context, screening)


async def back_list(shell: Shell, update: Update, context: Context, screening: Screening) -> None:
    """The answered questions as buttons."""
    lang = shell.lang(update, context)
    rows = answered_rows(shell.service.protocol_for(screening), screening, lang)
    if not rows:
        await shell.send(update, context, t("nothing_to_change", lang))
        return
    await shell.send(update, context, t("back_choose", lang), keyboard(rows))


async def cmd_cancel(shell: Shell, update: Update, context: Context) -> None:
    """/cancel: abandon the current screening, with a reason."""
    lang = shell.lang(update, context)
    screening = shell.current(context)
    if screening is None:
        await shell.send(update, context, t("no_current", lang))
        return
    await ask_close_reason(shell, update, context, screening, "cancelled")


async def ask_close_reason(
    shell: Shell,
    update: Update,
    context: Context,
    screening: Screening,
    close: Closing,
) -> None:
    """Ask why the screening is cancelled or closed as not completed."""
    phase = ClosingReason(screening_id=screening.id, revision=screening.row_version, close=close)
    await shell.keep(context, shell.conversation(context).but(phase=phase))
    lang = shell.lang(update, context)
    if close == "cancelled":
        await shell.send(update, context, t("cancel_reason", lang, code=screening.code))
    else:
        await shell.send(update, context, t("not_completed_reason", lang))


async def cmd_review(shell: Shell, update: Update, context: Context) -> None:
    """/review: screenings awaiting an investigator's decision."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    if staff.role not in (Role.INVESTIGATOR, Role.ADMIN):
        await shell.send(update, context, t("role_needed", lang, role="investigator"))
        return
    waiting = [
        s for s in await shell.db(shell.repo.waiting, "needs_review") if can_access(staff, s)
    ]
    if not waiting:
        await shell.send(update, context, t("review_none", lang))
        return
    rows = [
        [tap(f"{s.code} · {s.protocol_id}", Callback(Action.REVIEW, s.id, s.row_version))]
        for s in waiting
    ]
    await shell.send(update, context, t("review_list", lang), keyboard(rows))


async def cmd_export(shell: Shell, update: Update, context: Context) -> None:
    """/export [CODE]: the transcript of the current (or a named) screening, PDF and JSON."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    screening = None
    if context.args:
        screening = await shell.db(shell.repo.find_screening, context.args[0])
    elif staff.current_screening_id is not None:
        screening = await shell.screening(context, staff.current_screening_id)
    if screening is None:
        await shell.send(update, context, t("export_usage", lang))
        return
    if not can_access(staff, screening):
        await shell.send(update, context, t("not_yours", lang, code=screening.code))
        return
    transcript = await shell.db(
        build_transcript,
        shell.repo,
        screening,
        shell.service.protocol_for(screening),
        timezone=shell.settings.timezone,
        now=datetime.now(UTC),
    )
    chat = update.effective_chat
    assert chat is not None
    data = json.dumps(transcript_json(transcript), ensure_ascii=False, indent=1)
    caption = "export_failed" if transcript.failures else "export_caption"
    await context.bot.send_document(
        chat.id,
        transcript_pdf(transcript),
        filename=f"{screening.code}.pdf",
        caption=t(caption, lang, code=screening.code),
    )
    await context.bot.send_document(chat.id, data.encode(), filename=f"{screening.code}.json")


async def cmd_language(shell: Shell, update: Update, context: Context) -> None:
    """/language: English or Chinese."""
    rows = [
        [
            tap("English", Callback(Action.LANGUAGE, 0, 0, "en")),
            tap("中文", Callback(Action.LANGUAGE, 0, 0, "zh")),
        ]
    ]
    text = t("language_choose", shell.lang(update, context))
    await shell.send(update, context, text, keyboard(rows))


async def cmd_staff(shell: Shell, update: Update, context: Context) -> None:
    """/staff list | add ID NAME [ROLE] | remove ID (admins)."""
    lang, staff = shell.lang(update, context), shell.staff(context)
    if staff.role is not Role.ADMIN:
        await shell.send(update, context, t("role_needed", lang, role="admin"))
        return
    args = list(context.args or [])
    if args[:1] == ["list"]:
        lines = [staff_line(member, lang) for member in await shell.db(shell.repo.list_staff)]
        await shell.send(update, context, "\n".join(lines))
        return
    if len(args) >= 3 and args[0] == "add" and args[1].isdecimal():
        role = Role.COORDINATOR
        if args[-1] in {r.value for r in Role}:
            role = Role(args.pop())
        name = " ".join(args[2:])
        saved = await shell.db(shell.repo.save_staff, Staff(int(args[1]), name, role))
        await shell.send(update, context, staff_line(saved, lang))
        return
    if len(args) == 2 and args[0] == "remove" and args[1].isdecimal():
        removed = await shell.db(withdraw_access, shell.repo, int(args[1]))
        text = staff_line(removed, lang) if removed else t("staff_unknown", lang, id=args[1])
        await shell.send(update, context, text)
        return
    await shell.send(update, context, t("staff_usage", lang))


async def on_unknown_command(shell: Shell, update: Update, context: Context) -> None:
    """A command the bot does not have."""
    await shell.send(update, context, t("unknown_command", shell.lang(update, context)))
