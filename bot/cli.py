"""The ``prescreen`` command line: protocol tools, database, audit, staff, console, the bot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bot import cli_exports  # noqa: F401  (its commands register on the app)
from bot.cli_base import (
    FileArg,
    PlainUsage,
    app,
    audit_app,
    container_or_exit,
    db_app,
    fail,
    protocol_app,
    settings_or_exit,
    staff_app,
)
from bot.container import Container
from flows.diagram import mermaid
from flows.joint import concept_conflicts
from flows.loader import BUNDLED_DIR, check_protocol_file
from flows.schema import Protocol
from reports.chain import ChainReport, verify_entries
from reports.replay import verify
from storage.db import (
    current_revision,
    head_revision,
    make_engine,
    safe_url,
    sqlite_file_missing,
    unavailable_as_storage_error,
    upgrade,
)
from storage.records import Role, Staff, StorageUnavailable

# --- protocol ---------------------------------------------------------------------------------


@protocol_app.command("check", cls=PlainUsage)
def protocol_check(file: FileArg) -> None:
    """Validate a protocol: schema, references, order of relevance, reachability, duplicates."""
    protocol, findings = check_protocol_file(file)
    for finding in findings:
        typer.echo(f"{file}: {finding}", err=True)
    if protocol is None or any(f.severity == "error" for f in findings):
        raise typer.Exit(1)
    # A concept must mean the same in every trial a site screens together: compared with the
    # bundled protocols and the others in the file's folder.
    conflicts = [
        line
        for other in _protocols_beside(file)
        if other.digest != protocol.digest
        for line in concept_conflicts([protocol, other])
    ]
    for line in conflicts:
        typer.echo(f"{file}: error: {line}", err=True)
    if conflicts:
        raise typer.Exit(1)
    typer.echo(
        f"{file}: OK — {protocol.label}, {len(protocol.questions)} questions, "
        f"{len(protocol.criteria)} criteria, sha256 {protocol.digest}"
    )


def _protocols_beside(file: Path) -> list[Protocol]:
    """The bundled protocols and the valid ones in ``file``'s folder."""
    found: list[Protocol] = []
    for path in [*sorted(BUNDLED_DIR.glob("*.yaml")), *sorted(file.parent.glob("*.yaml"))]:
        other, findings = check_protocol_file(path)
        if other is not None and not any(f.severity == "error" for f in findings):
            found.append(other)
    return found


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
    url = settings_or_exit().database_url
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
    url = settings_or_exit().database_url
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
    missing = sqlite_file_missing(settings_or_exit().database_url)
    if missing is not None:
        fail(f"Nothing to verify: no database at {missing} (PRESCREEN_DATABASE_URL)", 1)
    container = container_or_exit()
    repo = container.repo
    codes = [code] if code else repo.audited_codes()
    if code and not repo.audit_events(code):
        fail(f"Nothing to verify: no screening with the code {code}", 1)
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
    saved = container_or_exit(create=True).repo.save_staff(
        Staff(telegram_id, name.strip(), role, True, site)
    )
    typer.echo(f"{saved.telegram_id} {saved.display_name}: {saved.role.value}, active")


@staff_app.command("remove", cls=PlainUsage)
def staff_remove(telegram_id: TelegramId) -> None:
    """Withdraw a staff member's access (the record is kept for the audit trail)."""
    from bot.access import withdraw_access

    removed = withdraw_access(container_or_exit().repo, telegram_id)
    if removed is None:
        typer.echo(f"{telegram_id}: not a staff member", err=True)
        raise typer.Exit(1)
    typer.echo(f"{telegram_id} {removed.display_name}: access withdrawn")


@staff_app.command("list", cls=PlainUsage)
def staff_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List staff members."""
    staff = container_or_exit().repo.list_staff()
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


# --- console ----------------------------------------------------------------------------------


@app.command("console", cls=PlainUsage)
def console(lang: Annotated[str, typer.Option(help="en or zh")] = "en") -> None:
    """Run a screening in the terminal with the bot's engine and storage (no Telegram)."""
    from bot.console import Console
    from bot.service import ScreeningService
    from flows.text import as_lang

    container = container_or_exit(create=True)
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

    settings = settings_or_exit()
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


__all__ = ["app", "main"]
