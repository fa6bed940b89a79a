"""Exporting 10,000 screenings streams: memory stays bounded whatever their number."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from flows import Protocol, start
from storage.audit import GENESIS, next_link
from storage.db import make_engine, upgrade
from storage.sql import SqlRepository
from storage.tables import AuditEventRow, ProtocolVersion, ScreeningRow

COUNT = 10_000


def bulk_screenings(repo: SqlRepository, seed: Protocol, count: int) -> None:
    """Insert started screenings with their first audit event, fast (one transaction)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    state = start(seed)
    with Session(repo.engine) as session, session.begin():
        session.add(
            ProtocolVersion(
                digest=seed.digest,
                protocol_id=seed.id,
                version=seed.version,
                content=seed.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                stored_at=at,
            )
        )
        for i in range(count):
            code = f"B-{i:05d}"
            moment = at + timedelta(seconds=i)
            session.add(
                ScreeningRow(
                    code=code,
                    protocol_id=seed.id,
                    protocol_version=seed.version,
                    protocol_digest=seed.digest,
                    status="in_progress",
                    at=state.at,
                    created_by=1,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            payload = {"protocol": seed.id, "version": seed.version, "digest": seed.digest}
            link = next_link(code, GENESIS, 1, "screening_started", payload, 1, moment)
            session.add(
                AuditEventRow(
                    screening_code=code,
                    seq=1,
                    kind=link.kind,
                    payload=link.payload,
                    actor=1,
                    at=moment,
                    prev_hash=GENESIS,
                    hash=link.hash,
                )
            )


CHILD = """
import resource, sys
from bot.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def export_in_child(tmp_path: Path, url: str, out: str, *args: str) -> int:
    """Run ``prescreen export`` in a fresh process; return its peak resident memory (bytes)."""
    env = {**os.environ, "PRESCREEN_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "export", out, "--formats", "json,csv", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    kilobytes = int(result.stdout.rsplit("maxrss_kb", 1)[1])
    return kilobytes * 1024


@pytest.mark.slow
def test_ten_thousand_transcripts_export_in_bounded_memory(tmp_path: Path, seed: Protocol) -> None:
    url = f"sqlite:///{tmp_path / 'many.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    bulk_screenings(SqlRepository(engine), seed, COUNT)
    first_thousand = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1000)).isoformat()
    small = export_in_child(tmp_path, url, "small.zip", "--until", first_thousand[:19])
    large = export_in_child(tmp_path, url, "large.zip")
    sizes = {}
    for name, expected in (("small.zip", 1000), ("large.zip", COUNT)):
        with zipfile.ZipFile(tmp_path / name) as archive:
            infos = archive.infolist()
            assert len(infos) == 2 * expected
            sizes[name] = sum(i.file_size for i in infos)
    # Ten times the screenings, tens of MB more output: the process grows by a few MB at most,
    # because transcripts are streamed into the archive one at a time.
    assert sizes["large.zip"] - sizes["small.zip"] > 40_000_000
    assert large - small < 20_000_000, f"{small / 1e6:.0f} MB → {large / 1e6:.0f} MB"
