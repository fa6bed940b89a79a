"""``prescreen export`` and ``prescreen report``: transcripts and the screening log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

from bot.cli_base import PlainUsage, app, container_or_exit, fail
from flows.verdict import Status
from storage.records import CLOSE_STATUSES, Screening
from storage.repository import Repository

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
        fail(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return wanted


def _writable_file(out: Path) -> None:
    if out.is_dir():
        fail(f"{out} is a folder; give a file name, such as {out / 'transcripts.zip'}")
    if not out.parent.is_dir():
        fail(f"the folder {out.parent} does not exist; create it or choose another path")


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
            fail(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    _writable_file(out)
    container = container_or_exit()
    service = ScreeningService(container.repo, container.catalog, container.settings.code_pattern)
    if code is not None and container.repo.find_screening(code) is None:
        fail(f"no screening with the code {code}; nothing was written", 1)
    selected = list(_select(container.repo, code, since, until, status))
    if not selected:
        fail("no screening matches; nothing was written", 1)

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
            help="CSV of counts by status; its criteria CSV and the CSV of patients screened "
            "against several trials are written beside it. "
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
        fail(f"unknown period {period!r}; choose from day, week, month, year")
    if out is None:
        out = reports_folder() / "screening-log.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
    for target in (out, chart):
        if target is not None:
            _writable_file(target)
    container = container_or_exit()
    service = ScreeningService(container.repo, container.catalog, container.settings.code_pattern)
    screenings = container.repo.in_range(_aware(since, _DAWN), _aware(until, _DUSK))
    log = screening_log(((s, service.protocol_for(s)) for s in screenings), period)  # type: ignore[arg-type]
    out.write_text(log.status_csv(), encoding="utf-8")
    criteria = out.with_name(f"{out.stem}-criteria.csv")
    criteria.write_text(log.criterion_csv(), encoding="utf-8")
    passes = out.with_name(f"{out.stem}-several-trials.csv")
    passes.write_text(log.passes_csv(), encoding="utf-8")
    typer.echo(f"wrote {out}, {criteria} and {passes}")
    if chart is not None:
        log.chart(chart)
        typer.echo(f"wrote {chart}")
