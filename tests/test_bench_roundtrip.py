"""``bench.roundtrip``: PostgreSQL's round trips, each insert committed, nothing left behind."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, text

from bench.roundtrip import TABLE, main, measure, probe_connection


def test_each_insert_is_committed_when_it_is_timed(postgres_engine: Engine) -> None:
    with probe_connection(postgres_engine) as driver:
        reading = measure(driver, 7)
        # Seen from another connection while the measuring one is still open: committed,
        # so each timed insert included the commit's wait for the log flush.
        with postgres_engine.connect() as other:
            assert other.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() == 7
    assert reading.select_us > 0
    assert reading.insert_us > 0


def _bench_schemas(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'")
        )
        return {row[0] for row in rows}


def test_main_prints_each_reading_and_drops_its_schema(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PRESCREEN_BENCH_POSTGRES_URL", url)
    before = _bench_schemas(postgres_engine)

    main(["--count", "5", "--readings", "2"])

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for index, line in enumerate(lines, 1):
        assert re.fullmatch(
            rf"PostgreSQL round trips, reading {index} \(medians of 5\): "
            r"SELECT 1 \d+ µs, one-row insert committed \d+ µs",
            line,
        )
    assert _bench_schemas(postgres_engine) == before


def test_main_measures_nothing_without_a_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PRESCREEN_BENCH_POSTGRES_URL", raising=False)
    main([])
    assert "not set, nothing measured" in capsys.readouterr().out
