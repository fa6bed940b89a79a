"""The ``prescreen`` command line: protocol tools, database, audit, staff, console, the bot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import platformdirs
import typer
from typer.core import TyperArgument, TyperCommand

from bot.container import Container, build
from bot.settings import BadSettings, Settings, load_settings
from flows.diagram import mermaid
from flows.loader import check_protocol_file
from flows.verdict import Status
from reports.replay import verify
from storage.audit import ChainReport, verify_entries
from storage.db import (
    current_revision,
    head_revision,
    make_engine,
    safe_url,
    sqlite_file_missing,
    unavailable_as_storage_error,
    upgrade,
)
from storage.records import CLOSE_STATUSES, Role, Screening, Staff, StorageUnavailable
from storage.repository import Repository


class PlainUsage(TyperCommand):
    """A command whose usage line names arguments as click does: ``OUT`` and ``[CODE]``.

    Typer writes required arguments in braces (``{out}``), which reads like a placeholder
    left in by mistake.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # typer's vendored click.Context
        """The usage line after the command's name."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def _group(help_text: str, *, add_completion: bool = True) -> typer.Typer:
    # Plain click help: typer's rich panels print a type (`<bool>`, `{out}`) beside every
    # option and take square brackets in help texts for markup.
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=add_completion,
    )


app = _group("Prescreen: pre-screen patients for clinical trials.", add_completion=False)
protocol_app = _group("Validate and inspect protocol files.")
db_app = _group("Database schema (Alembic migrations).")
audit_app = _group("Audit trail checks.")
staff_app = _group("Authorised staff and their roles.")
app.add_typer(protocol_app, name="protocol")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(staff_app, name="staff")

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Protocol YAML file.")]


def _settings() -> Settings:
    """The settings, or one line per wrong setting and exit status 2."""
    try:
        return load_settings()
    except BadSettings as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None


def _fail(message: str, status: int = 2) -> NoReturn:
    """Print one line on stderr and exit: a mistake the operator can fix."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def _container(*, create: bool = False) -> Container:
    """The composition root for a CLI command.

    Args:
        create: Whether a missing SQLite database may be created; commands that only read
            refuse instead, so that a mistyped URL leaves no empty database behind.
    """
    settings = _settings()
    missing = None if create else sqlite_file_missing(settings.database_url)
    if missing is not None:
        _fail(
            f"no database at {missing} (PRESCREEN_DATABASE_URL); `prescreen db upgrade` or "
            "the bot's start creates it",
            1,
        )
    try:
        return build(settings)
    except StorageUnavailable as exc:
        typer.echo(
            f"error: cannot reach the database {safe_url(settings.database_url)}: {exc}",
            err=True,
        )
        raise typer.Exit(2) from exc
    except Exception as exc:  # a clear message instead of a traceback for set-up problems
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


# --- protocol ---------------------------------------------------------------------------------


@protocol_app.command("check", cls=PlainUsage)
def protocol_check(file: FileArg) -> None:
    """Validate a protocol: schema, references, order of relevance, reachability, duplicates."""
    protocol, findings = check_protocol_file(file)
    for finding in findings:
        typer.echo(f"{file}: {finding}", err=True)
    if protocol is None or any(f.severity == "error" for f in findings):
        raise typer.Exit(1)
    typer.echo(
        f"{file}: OK — {protocol.label}, {len(protocol.questions)} questions, "
        f"{len(protocol.criteria)} criteria, sha256 {protocol.digest}"
    )


@protocol_app.command("diagram", cls=PlainUsage)
def protocol_diagram(file: FileArg) -> None:
    """Print the dialog as a Mermaid state diagram."""
    protocol, findings = check_protocol_file(file)
    if protocol is None or any(f.severity == "error" for f in findings):
        for finding in findings:
            typer.echo(f"{file}: {finding}", err=True)
        raise typer.Exit(1)
    typer.echo(mermaid(protocol))


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade", cls=PlainUsage)
def db_upgrade() -> None:
    """Migrate the database named by the settings to the newest schema."""
    url = _settings().database_url
    try:
        with unavailable_as_storage_error():
            engine = make_engine(url)
            upgrade(engine)
            typer.echo(f"{safe_url(url)}: at revision {current_revision(engine)}")
    except StorageUnavailable as exc:
        typer.echo(f"error: cannot reach the database {safe_url(url)}: {exc}", err=True)
        raise typer.Exit(2) from exc


@db_app.command("status", cls=PlainUsage)
def db_status() -> None:
    """Show which database the settings name, its schema revision and the newest one."""
    url = _settings().database_url
    missing = sqlite_file_missing(url)
    if missing is not None:  # a status check creates neither a folder nor a database
        typer.echo(
            f"{safe_url(url)}: no database at {missing} yet (`prescreen db upgrade` or the "
            "bot's start creates it)",
            err=True,
        )
        raise typer.Exit(1)
    try:
        with unavailable_as_storage_error():
            revision = current_revision(make_engine(url))
    except StorageUnavailable as exc:
        typer.echo(f"error: cannot reach the database {safe_url(url)}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{safe_url(url)}: at {revision or 'empty'}; newest: {head_revision()}")


# --- audit ------------------------------------------------------------------------------------


def _report(report: ChainReport) -> bool:
    if report.ok:
        typer.echo(f"{report.code}: OK, {report.checked} events, head {report.head}")
    else:
        typer.echo(
            f"{report.code}: BROKEN at event {report.broken_at}: {report.problem} "
            f"({report.checked} events verified before it)"
        )
    return report.ok


@audit_app.command("verify", cls=PlainUsage)
def audit_verify(
    code: Annotated[str | None, typer.Argument(help="Screening code; all when omitted.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="Check an exported JSON transcript instead of the database.",
        ),
    ] = None,
) -> None:
    """Recompute the audit hash chain(s) and report the first broken link."""
    if file is not None:
        from reports.exporters import verify_transcript_json

        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            typer.echo(f"{file}: not JSON: {exc}")
            raise typer.Exit(1) from exc
        if not _report(verify_transcript_json(data)):
            raise typer.Exit(1)
        return
    missing = sqlite_file_missing(_settings().database_url)
    if missing is not None:
        _fail(f"Nothing to verify: no database at {missing} (PRESCREEN_DATABASE_URL)", 1)
    container = _container()
    repo = container.repo
    codes = [code] if code else repo.audited_codes()
    if code and not repo.audit_events(code):
        _fail(f"Nothing to verify: no screening with the code {code}", 1)
    if not codes:
        typer.echo("Nothing to verify: the database holds no screenings.")
        return
    results = [_verify_one(container, c) for c in codes]
    if not all(results):
        raise typer.Exit(1)


def _verify_one(container: Container, code: str) -> bool:
    """The chain, then the stored rows against a replay of the events (reports.replay)."""
    from bot.service import ScreeningService

    chain = verify_entries(code, container.repo.audit_events(code))
    if not chain.ok:
        return _report(chain)
    screening = container.repo.find_screening(code)
    if screening is None:
        typer.echo(f"{code}: FAILED verification: events without a screening row")
        return False
    service = ScreeningService(container.repo, container.catalog, container.settings.code_pattern)
    problems = verify(container.repo, screening, service.protocol_for(screening))
    for problem in problems:
        typer.echo(f"{code}: FAILED verification: {problem}")
    return not problems and _report(chain)


# --- staff ------------------------------------------------------------------------------------


TelegramId = Annotated[
    int, typer.Argument(help="The person's Telegram user id (the bot tells strangers theirs).")
]


@staff_app.command("add", cls=PlainUsage)
def staff_add(
    telegram_id: TelegramId,
    name: Annotated[str, typer.Argument(help="Display name of the staff member.")],
    role: Annotated[
        Role, typer.Option(help="coordinator, investigator or admin.")
    ] = Role.COORDINATOR,
    site: Annotated[str | None, typer.Option(help="Site, when screenings are per site.")] = None,
) -> None:
    """Authorise a staff member, or change one's name, role or site."""
    if not name.strip():
        typer.echo("error: the name is empty; give the person's display name", err=True)
        raise typer.Exit(2)
    saved = _container(create=True).repo.save_staff(
        Staff(telegram_id, name.strip(), role, True, site)
    )
    typer.echo(f"{saved.telegram_id} {saved.display_name}: {saved.role.value}, active")


@staff_app.command("remove", cls=PlainUsage)
def staff_remove(telegram_id: TelegramId) -> None:
    """Withdraw a staff member's access (the record is kept for the audit trail)."""
    from bot.service import withdraw_access

    removed = withdraw_access(_container().repo, telegram_id)
    if removed is None:
        typer.echo(f"{telegram_id}: not a staff member", err=True)
        raise typer.Exit(1)
    typer.echo(f"{telegram_id} {removed.display_name}: access withdrawn")


@staff_app.command("list", cls=PlainUsage)
def staff_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List staff members."""
    staff = _container().repo.list_staff()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "telegram_id": s.telegram_id,
                        "name": s.display_name,
                        "role": s.role.value,
                        "active": s.active,
                        "site": s.site,
                    }
                    for s in staff
                ]
            )
        )
        return
    typer.echo("telegram_id\tname\trole\tstate\tsite")
    for s in staff:
        typer.echo(
            f"{s.telegram_id}\t{s.display_name}\t{s.role.value}\t"
            f"{'active' if s.active else 'removed'}\t{s.site or ''}"
        )


# --- export and report ------------------------------------------------------------------------

_DAWN = datetime(1970, 1, 1, tzinfo=UTC)
_DUSK = datetime(9999, 1, 1, tzinfo=UTC)


def _aware(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _select(
    repo: Repository,
    code: str | None,
    since: datetime | None,
    until: datetime | None,
    status: str | None,
) -> Iterator[Screening]:
    if code is not None:
        found = repo.find_screening(code)
        if found is not None:
            yield found
        return
    for screening in repo.in_range(_aware(since, _DAWN), _aware(until, _DUSK)):
        if status is None or screening.status == status:
            yield screening


Since = Annotated[datetime | None, typer.Option(help="Screenings started at or after (UTC).")]
Until = Annotated[datetime | None, typer.Option(help="Screenings started before (UTC).")]


FORMATS = ("pdf", "csv", "json")
STATUSES = tuple(str(s) for s in Status) + CLOSE_STATUSES


def _formats(text: str) -> list[str]:
    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        _fail(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return wanted


def _writable_file(out: Path) -> None:
    if out.is_dir():
        _fail(f"{out} is a folder; give a file name, such as {out / 'transcripts.zip'}")
    if not out.parent.is_dir():
        _fail(f"the folder {out.parent} does not exist; create it or choose another path")


@app.command("export", cls=PlainUsage)
def export(
    out: Annotated[Path, typer.Argument(metavar="OUT.zip", help="ZIP file to write.")],
    code: Annotated[str | None, typer.Option(help="Only the screening with this code.")] = None,
    since: Since = None,
    until: Until = None,
    status: Annotated[
        str | None,
        typer.Option(help=f"Only screenings with this status: {', '.join(STATUSES)}."),
    ] = None,
    formats: Annotated[
        str, typer.Option(help="Comma-separated, any of: pdf, csv, json.")
    ] = "pdf,csv,json",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes drawing PDFs; PRESCREEN_EXPORT_WORKERS when not given."
        ),
    ] = None,
) -> None:
    """Export transcripts (PDF, CSV, JSON per screening) into a ZIP; everything by default."""
    from bot.service import ScreeningService
    from reports.exporters import write_zip
    from reports.transcript import Transcript, build_transcripts

    wanted = _formats(formats)
    if status is not None:
        status = status.strip().lower()
        if status not in STATUSES:
            _fail(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    _writable_file(out)
    container = _container()
    service = ScreeningService(container.repo, container.catalog, container.settings.code_pattern)
    if code is not None and container.repo.find_screening(code) is None:
        _fail(f"no screening with the code {code}; nothing was written", 1)
    selected = list(_select(container.repo, code, since, until, status))
    if not selected:
        _fail("no screening matches; nothing was written", 1)

    with typer.progressbar(selected, label="exporting", show_pos=True) as screenings:
        transcripts = build_transcripts(
            container.repo,
            screenings,
            service.protocol_for,
            timezone=container.settings.timezone,
            now=datetime.now(UTC),
        )
        failed: list[str] = []

        def noting_failures(items: Iterator[Transcript]) -> Iterator[Transcript]:
            for t in items:
                if t.failures:
                    failed.append(t.screening.code)
                yield t

        with out.open("wb") as target:
            count = write_zip(
                target,
                noting_failures(transcripts),
                wanted,
                workers=workers or container.settings.pdf_workers,
            )
    typer.echo(f"{count} screening(s) exported to {out}")
    if failed:
        typer.echo(
            f"error: {len(failed)} failed verification and are marked so in their transcripts: "
            + ", ".join(failed[:20])
            + (" …" if len(failed) > 20 else "")
            + " (prescreen audit verify says why)",
            err=True,
        )
        raise typer.Exit(1)


def reports_folder() -> Path:
    """Where ``prescreen report`` writes when not told: ``reports`` in the user's data folder."""
    return platformdirs.user_data_path("prescreen") / "reports"


@app.command("report", cls=PlainUsage)
def report(
    out: Annotated[
        Path | None,
        typer.Option(
            help="CSV of counts by status; its criteria CSV is written beside it. "
            "Default: screening-log.csv in the reports folder of the user's data folder "
            "(~/.local/share/prescreen/reports on Linux)."
        ),
    ] = None,
    chart: Annotated[Path | None, typer.Option(help="PNG bar chart to write.")] = None,
    period: Annotated[str, typer.Option(help="day, week, month or year.")] = "month",
    since: Since = None,
    until: Until = None,
) -> None:
    """The screening log: counts per trial and period, without any identifier."""
    from bot.service import ScreeningService
    from reports.report import screening_log

    period = period.strip().lower()
    if period not in {"day", "week", "month", "year"}:
        _fail(f"unknown period {period!r}; choose from day, week, month, year")
    if out is None:
        out = reports_folder() / "screening-log.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
    for target in (out, chart):
        if target is not None:
            _writable_file(target)
    container = _container()
    service = ScreeningService(container.repo, container.catalog, container.settings.code_pattern)
    screenings = container.repo.in_range(_aware(since, _DAWN), _aware(until, _DUSK))
    log = screening_log(((s, service.protocol_for(s)) for s in screenings), period)  # type: ignore[arg-type]
    out.write_text(log.status_csv(), encoding="utf-8")
    criteria = out.with_name(f"{out.stem}-criteria.csv")
    criteria.write_text(log.criterion_csv(), encoding="utf-8")
    typer.echo(f"wrote {out} and {criteria}")
    if chart is not None:
        log.chart(chart)
        typer.echo(f"wrote {chart}")


# --- console ----------------------------------------------------------------------------------


@app.command("console", cls=PlainUsage)
def console(lang: Annotated[str, typer.Option(help="en or zh")] = "en") -> None:
    """Run a screening in the terminal with the bot's engine and storage (no Telegram)."""
    from bot.console import Console
    from bot.service import ScreeningService
    from flows.text import as_lang

    container = _container(create=True)
    settings = container.settings
    actor = settings.console_user_id
    if container.repo.get_staff(actor) is None:
        container.repo.save_staff(Staff(actor, "Console user", Role.COORDINATOR))
    service = ScreeningService(container.repo, container.catalog, settings.code_pattern)
    Console(service, actor, as_lang(lang)).run()


@app.command("run", cls=PlainUsage)
def run(
    webhook: Annotated[bool, typer.Option(help="Serve a webhook instead of polling.")] = False,
) -> None:
    """Run the Telegram bot (polling by default)."""
    from telegram.error import InvalidToken, NetworkError

    from bot.runner import NotConfigured
    from bot.runner import run as run_bot

    settings = _settings()
    try:
        run_bot(settings, webhook=webhook)
    except NotConfigured as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except InvalidToken as exc:
        typer.echo(
            "error: Telegram rejected the bot token (PRESCREEN_BOT_TOKEN); check it with "
            "@BotFather, or /revoke it there and set the new one",
            err=True,
        )
        raise typer.Exit(2) from exc
    except NetworkError as exc:  # DNS, refused, timed out: the message names no token
        typer.echo(
            f"error: cannot reach Telegram at {settings.base_url} ({exc.message}); check the "
            "network, a proxy, or PRESCREEN_BASE_URL",
            err=True,
        )
        raise typer.Exit(2) from exc


def main() -> None:
    """Entry point of the ``prescreen`` console script."""
    app()
