"""Storage at scale: the resume list among 100,000 screenings; exporting 10,000 transcripts.

``python -m bench.storage`` (SQLite; PostgreSQL too when PRESCREEN_BENCH_POSTGRES_URL is set);
``--db`` and ``--part`` choose what to run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from bench.engine import ANSWERS, per_call_us
from bench.floors import EXPORT_S, RESUME_P99_MS, floor_line
from bench.scratch import scratch_engine
from flows import (
    Answer,
    GoBack,
    Parsed,
    Protocol,
    ScreeningState,
    current_question,
    parse_answer,
    start,
    step,
)
from flows.loader import BUNDLED_DIR, load_protocol
from reports.exporters import write_zip
from reports.transcript import build_transcripts
from storage.audit import GENESIS, next_link
from storage.db import upgrade
from storage.memory import InMemoryRepository
from storage.records import AuditEntry, Screening, state_to_json
from storage.sql import SqlRepository
from storage.tables import AuditEventRow, ProtocolVersion, ScreeningRow

AUDIT = AuditEventRow.__table__  # type: ignore[attr-defined]  # SQLModel's table
PROTOCOL = ProtocolVersion.__table__  # type: ignore[attr-defined]
SCREENING = ScreeningRow.__table__  # type: ignore[attr-defined]

STAFF = 100
STORED = 100_000  # screenings in the database, for the resume list
EXPORTED = 10_000  # the first this many screenings are complete, with a full audit trail
_TURN = itertools.count()


@dataclass(frozen=True)
class Template:
    """A complete screening as the bot records it: every answer, a correction, a signature."""

    state: ScreeningState
    status: str
    events: list[AuditEntry]
    close_reason: str | None
    row_version: int


def completed_screening(seed: Protocol) -> Template:
    """Screen the reference eligible subject, correct one answer with a reason, and sign."""
    repo = InMemoryRepository()

    def answered(s: Screening, raw: str | None = None, reason: str | None = None) -> Screening:
        question = current_question(seed, s.state)
        assert question is not None
        text = raw if raw is not None else ANSWERS[question.id]
        parsed = parse_answer(question, text)
        assert isinstance(parsed, Parsed)
        event = Answer(question.id, parsed.value)
        result = step(seed, s.state, event)
        return repo.record_step(s, event, result, actor=1, raw_text=text, reason=reason)

    s = repo.create_screening("T-000", seed, start(seed), actor=1)
    while not s.state.finished:
        s = answered(s)
    back = GoBack("age")
    s = answered(repo.record_step(s, back, step(seed, s.state, back), actor=1), "47", "wrong visit")
    s = repo.close(s, "signed", actor=1, reason="I confirm these answers reflect the sources.")
    return Template(s.state, s.status, repo.audit_events("T-000"), s.close_reason, s.row_version)


def fill(engine: Engine, seed: Protocol, count: int, batch: int = 5000) -> None:
    """Insert ``count`` screenings (spread over STAFF coordinators) in large batches.

    The first EXPORTED are complete, signed screenings with the audit trail the bot writes for
    them (about thirty events each); the others are started, a third of them closed."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    state = start(seed)
    done = completed_screening(seed)
    with engine.begin() as c:
        c.execute(
            insert(PROTOCOL).values(
                digest=seed.digest,
                protocol_id=seed.id,
                version=seed.version,
                stored_at=at,
                content=seed.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            )
        )
    for first in range(0, count, batch):
        screenings, events = [], []
        for i in range(first, min(first + batch, count)):
            code, moment = f"B-{i:06d}", at + timedelta(seconds=i)
            actor = 1000 + i % STAFF
            if i < EXPORTED:
                template: list[tuple[str, dict[str, Any]]] = [
                    (e.kind, e.payload) for e in done.events
                ]
            else:
                payload = {"protocol": seed.id, "version": seed.version, "digest": seed.digest}
                template = [("screening_started", payload)]
            head = GENESIS
            for seq, (kind, payload) in enumerate(template, 1):
                link = next_link(code, head, seq, kind, payload, actor, moment)
                head = link.hash
                events.append(
                    {
                        "screening_code": code,
                        "seq": seq,
                        "kind": kind,
                        "payload": payload,
                        "actor": actor,
                        "at": moment,
                        "prev_hash": link.prev_hash,
                        "hash": link.hash,
                    }
                )
            complete = i < EXPORTED
            row_state = done.state if complete else state
            closed = complete or i % 3 == 0  # a third of the others are finished too
            screenings.append(
                {
                    "code": code,
                    "protocol_id": seed.id,
                    "protocol_version": seed.version,
                    "protocol_digest": seed.digest,
                    "status": done.status if complete else "in_progress",
                    "at": row_state.at,
                    "revisiting": False,
                    "created_by": actor,
                    "created_at": moment,
                    "updated_at": moment,
                    "row_version": done.row_version if complete else 1,
                    "state": state_to_json(row_state),
                    "audit_seq": len(template),
                    "audit_head": head,
                    "closed_at": moment if closed else None,
                    "close_kind": "signed" if closed else None,
                    "close_reason": done.close_reason if complete else None,
                    "closed_by": actor if complete else None,
                }
            )
        with engine.begin() as c:
            c.execute(insert(SCREENING), screenings)
            c.execute(insert(AUDIT), events)


@dataclass(frozen=True)
class ExportTiming:
    """An export's wall time and the CPU time it used, here and in its PDF processes."""

    seconds: float
    cpu_here: float
    cpu_workers: float

    def busy(self, cores: int) -> float:
        """The share of the machine's cores the export kept busy on average."""
        return (self.cpu_here + self.cpu_workers) / (self.seconds * cores)


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user and system) of this process, and of its ended child processes."""
    here = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return here.ru_utime + here.ru_stime, children.ru_utime + children.ru_stime


def export(repo: SqlRepository, seed: Protocol, formats: list[str], workers: int) -> ExportTiming:
    """Time exporting the EXPORTED complete screenings into a ZIP file, as the CLI does:
    read one at a time, transcripts built, PDFs drawn by ``workers`` processes.

    The CPU time tells whether the export is bound by the machine's cores (their sum near
    the wall time times the cores) or waits on something. The PDF processes' share counts
    once they have ended, which they have when the ZIP is written."""
    start_at = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="prescreen-export-") as folder:
        here, children = _cpu_seconds()
        started = time.perf_counter()
        transcripts = build_transcripts(
            repo,
            repo.in_range(start_at, start_at + timedelta(seconds=EXPORTED)),
            lambda _: seed,
            timezone="UTC",
            now=now,
        )
        with (Path(folder) / "export.zip").open("wb") as target:
            count = write_zip(target, transcripts, formats, workers=workers)
        seconds = time.perf_counter() - started
        here_after, children_after = _cpu_seconds()
    assert count == EXPORTED, count
    return ExportTiming(seconds, here_after - here, children_after - children)


def resume(db: str, repo: SqlRepository) -> None:
    """Print the resume list's p50 and p99, another coordinator's each time."""
    repo.unfinished(1000)

    def resume_list() -> object:
        return repo.unfinished(1000 + next(_TURN) % STAFF)

    p50, p99 = per_call_us(resume_list, 500)
    print(
        f"{db}: resume list among {STORED:,} screenings: p50 {p50 / 1000:.2f} ms, "
        f"p99 {p99 / 1000:.2f} ms"
    )
    floor = f"{db}: resume list p99 ≤ {RESUME_P99_MS:g} ms"
    print(floor_line(floor, p99 / 1000 <= RESUME_P99_MS))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db", choices=["sqlite", "postgres"], action="append", help="default: every one"
    )
    parser.add_argument(
        "--part",
        choices=["resume", "export", "full-export"],
        action="append",
        help="the resume list; the export in all three ways; or only the full export "
        "(PDF, CSV and JSON, one PDF process per core). Default: resume and export",
    )
    args = parser.parse_args(argv)
    parts = set(args.part or ["resume", "export"])
    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    dbs = args.db or (
        ["sqlite"] + (["postgres"] if os.environ.get("PRESCREEN_BENCH_POSTGRES_URL") else [])
    )
    workers = os.cpu_count() or 1
    events = len(completed_screening(seed).events)
    exports = [(["pdf", "csv", "json"], workers)]
    if "export" in parts:
        exports = [(["csv", "json"], 1), (["pdf", "csv", "json"], 1), *exports]
    for db in dbs:
        with scratch_engine(db) as engine:
            upgrade(engine)
            fill(engine, seed, STORED)
            repo = SqlRepository(engine)
            if "resume" in parts:
                resume(db, repo)
            if not parts & {"export", "full-export"}:
                continue
            print(f"{db}: export of {EXPORTED:,} complete transcripts ({events} events each):")
            for formats, procs in exports:
                timing = export(repo, seed, formats, procs)
                print(
                    f"  {','.join(formats)} with {procs} PDF process(es): {timing.seconds:.1f} s "
                    f"({timing.seconds / EXPORTED * 1000:.2f} ms a transcript); CPU "
                    f"{timing.cpu_here:.1f} s here and {timing.cpu_workers:.1f} s in PDF "
                    f"processes, {timing.busy(workers) * 100:.0f} % of {workers} cores busy"
                )
            # The floor is the export as `prescreen export` writes it: every format, a PDF
            # process per core.
            floor = f"{db}: export of {EXPORTED:,} transcripts ≤ {EXPORT_S:g} s"
            print(floor_line(floor, timing.seconds <= EXPORT_S))


if __name__ == "__main__":
    main()
