"""``bench.storage`` and ``bench.memory``: the export's CPU time, and the floors each reports."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import bench.storage
from bench.storage import ExportTiming, export, fill
from flows.loader import BUNDLED_DIR, load_protocol
from storage.db import make_engine, upgrade
from storage.sql import SqlRepository


def test_busy_is_the_cpu_time_over_the_cores_wall_time() -> None:
    assert ExportTiming(10.0, 6.0, 12.0).busy(2) == pytest.approx(0.9)
    assert ExportTiming(10.0, 9.0, 0.0).busy(1) == pytest.approx(0.9)


def test_the_export_counts_the_cpu_time_of_its_pdf_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench.storage, "EXPORTED", 24)
    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    engine = make_engine(f"sqlite:///{tmp_path / 'bench.sqlite3'}")
    try:
        upgrade(engine)
        fill(engine, seed, 24)
        repo = SqlRepository(engine)

        alone = export(repo, seed, ["pdf", "csv", "json"], 1)
        assert alone.cpu_here > 0
        assert alone.cpu_workers == 0  # every PDF drawn here: no process was started

        pooled = export(repo, seed, ["pdf", "csv", "json"], 2)
        # Two spawned processes import reportlab and draw 23 of the 24 documents: their CPU
        # time counts only if they have ended, and been waited for, when the export returns.
        assert pooled.cpu_workers > 0.1
        assert pooled.busy(2) > 0
    finally:
        engine.dispose()


def test_the_storage_benchmark_reports_its_floors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.storage, "STORED", 40)
    monkeypatch.setattr(bench.storage, "EXPORTED", 20)
    bench.storage.main(["--db", "sqlite", "--part", "resume", "--part", "full-export"])
    out = capsys.readouterr().out
    assert "sqlite: resume list among 40 screenings" in out
    assert "sqlite: resume list p99 ≤ 5 ms: met" in out  # 40 screenings: far within
    assert "sqlite: export of 20 transcripts ≤ 60 s: met" in out


async def test_the_memory_benchmark_reports_its_floor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import bench.memory

    monkeypatch.setattr(bench.memory, "CHATS", 3)
    monkeypatch.setattr(bench.memory, "ROUNDS", 4)
    monkeypatch.setattr(bench.memory, "SAMPLE_EVERY", 6)
    seed = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    engine = make_engine(f"sqlite:///{tmp_path / 'memory.sqlite3'}", auto_checkpoint=False)
    before = gc.get_threshold()
    try:
        await bench.memory.screen(engine, seed)
    finally:
        engine.dispose()
        gc.unfreeze()  # the run tunes the collector as the serving bot does: undone
        gc.set_threshold(*before)
    out = capsys.readouterr().out
    assert "12 completed screenings: peak RSS" in out
    assert "growth from 6 to 12 screenings" in out
    assert "flat memory (at most 10 MB more after 12): met" in out
