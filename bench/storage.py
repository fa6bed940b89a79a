"""Storage at scale: the resume list among 100,000 screenings; exporting 10,000 transcripts.

``python -m bench.storage`` (SQLite; PostgreSQL too when PRESCREEN_BENCH_POSTGRES_URL is set).
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert

from bench.engine import per_call_us
from flows import Protocol, start
from flows.loader import BUNDLED_DIR, load_protocol
from storage.audit import GENESIS, next_link
from storage.db import make_engine, upgrade
from storage.exporters import write_zip
from storage.records import Screening, state_to_json
from storage.sql import AUDIT, PROTOCOL, SCREENING, SqlRepository
from storage.transcript import StaffDirectory, build_transcript

STAFF = 100
PDF_SAMPLE = 200  # PDFs are timed on a sample: 10,000 of them take far longer than a minute
_TURN = itertools.count()


def fill(engine: Engine, seed: Protocol, count: int, batch: int = 5000) -> None:
    """Insert ``count`` started screenings (spread over STAFF coordinators) with their first
    audit event, in large batches."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    state = start(seed)
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
            payload = {"protocol": seed.id, "version": seed.version, "digest": seed.digest}
            link = next_link(code, GENESIS, 1, "screening_started", payload, 1, moment)
            screenings.append(
                {
                    "code": code,
                    "protocol_id": seed.id,
                    "protocol_version": seed.version,
                    "protocol_digest": seed.digest,
                    "status": "in_progress",
                    "at": state.at,
                    "revisiting": False,
                    "created_by": 1000 + i % STAFF,
                    "created_at": moment,
                    "updated_at": moment,
                    "row_version": 1,
                    "state": state_to_json(state),
                    "audit_seq": 1,
                    "audit_head": link.hash,
                    # a third of them are finished, as in a running trial
                    "closed_at": moment if i % 3 == 0 else None,
                    "close_kind": "signed" if i % 3 == 0 else None,
                }
            )
            events.append(
                {
                    "screening_code": code,
                    "seq": 1,
                    "kind": link.kind,
                    "payload": link.payload,
                    "actor": 1,
                    "at": moment,
                    "prev_hash": GENESIS,
                    "hash": link.hash,
                }
            )
        with engine.begin() as c:
            c.execute(insert(SCREENING), screenings)
            c.execute(insert(AUDIT), events)


def engine_for(db: str) -> tuple[Engine, str | None]:
    if db == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="prescreen-bench-")) / "bench.sqlite3"
        return make_engine(f"sqlite:///{path}"), None
    url = os.environ["PRESCREEN_BENCH_POSTGRES_URL"]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with make_engine(url).begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return make_engine(url, connect_args={"options": f"-csearch_path={schema}"}), schema


def drop(db: str, schema: str | None) -> None:
    if schema is not None:
        with make_engine(os.environ["PRESCREEN_BENCH_POSTGRES_URL"]).begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def export(
    repo: SqlRepository,
    seed: Protocol,
    directory: StaffDirectory,
    screenings: list[Screening],
    formats: list[str],
) -> float:
    """Seconds to write the screenings' transcripts into a ZIP in memory."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    transcripts = (
        build_transcript(repo, s, seed, timezone="UTC", now=now, staff=directory)
        for s in screenings
    )
    write_zip(io.BytesIO(), transcripts, formats)
    return time.perf_counter() - started


def main() -> None:
    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    dbs = ["sqlite"] + (["postgres"] if os.environ.get("PRESCREEN_BENCH_POSTGRES_URL") else [])
    for db in dbs:
        engine, schema = engine_for(db)
        try:
            upgrade(engine)
            fill(engine, seed, 100_000)
            repo = SqlRepository(engine)
            repo.unfinished(1000)

            def resume_list(r: SqlRepository = repo) -> object:
                return r.unfinished(1000 + next(_TURN) % STAFF)  # another coordinator each time

            p50, p99 = per_call_us(resume_list, 500)
            print(
                f"{db}: resume list among 100,000 screenings: p50 {p50 / 1000:.2f} ms, "
                f"p99 {p99 / 1000:.2f} ms"
            )
            directory = StaffDirectory(repo)
            first = list(
                repo.in_range(
                    datetime(2026, 1, 1, tzinfo=UTC),
                    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=10_000),
                )
            )

            data_s = export(repo, seed, directory, first, ["csv", "json"])
            pdf_s = export(repo, seed, directory, first[:PDF_SAMPLE], ["pdf"])
            print(
                f"{db}: export of {len(first):,} transcripts as CSV and JSON: {data_s:.1f} s; "
                f"PDF: {pdf_s / PDF_SAMPLE * 1000:.0f} ms each (measured on {PDF_SAMPLE}), "
                f"so {pdf_s / PDF_SAMPLE * len(first) / 60:.0f} min for {len(first):,}"
            )
        finally:
            engine.dispose()
            drop(db, schema)


if __name__ == "__main__":
    main()
