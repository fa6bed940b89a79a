"""Transcripts and the screening log: the content of every format, tampering, the CLI."""

from __future__ import annotations

import copy
import csv
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from typer.testing import CliRunner

from bot.cli import app
from flows import Decide, Decision, GoBack, Protocol, step
from reports.exporters import (
    transcript_csv,
    transcript_document,
    transcript_json,
    transcript_pdf,
    verify_transcript_json,
    write_zip,
)
from reports.pdf import REGULAR, WIDTH, PdfRenderer, wrap
from reports.transcript import Transcript, build_transcript, build_transcripts
from storage.db import make_engine, upgrade
from storage.memory import InMemoryRepository
from storage.records import AuditEntry, Role, Screening, Staff
from storage.repository import Repository
from storage.sql import SqlRepository
from tests.test_repository_contract import ALICE, BOB, answer, answer_all, begin

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def rich_screening(repo: Repository, seed: Protocol, code: str = "S-700") -> Screening:
    """Answers, a correction with a reason, an investigator decision and a signature."""
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_staff(Staff(BOB, "Dr Bob", Role.INVESTIGATOR))
    s = answer_all(repo, seed, begin(repo, seed, code), platelets="60")
    back = GoBack("age")
    s = repo.record_step(s, back, step(seed, s.state, back), actor=ALICE)
    s = answer(repo, seed, s, "47", reason="age taken from the wrong visit")
    decide = Decide(Decision("I8.2", True, "collection feasible after transfusion"))
    s = repo.record_step(
        s,
        decide,
        step(seed, s.state, decide),
        actor=BOB,
        reason="collection feasible after transfusion",
    )
    closed = repo.close(
        s, "signed", actor=ALICE, reason="I confirm these answers reflect the source documents."
    )
    return closed


@pytest.fixture
def transcript(seed: Protocol) -> Transcript:
    repo = InMemoryRepository()
    s = rich_screening(repo, seed)
    return build_transcript(repo, s, seed, timezone="Asia/Shanghai", now=NOW)


def test_json_holds_everything_an_auditor_needs(transcript: Transcript, seed: Protocol) -> None:
    data = transcript_json(transcript)
    assert data["trial"] == {
        "id": seed.id,
        "registry": None,
        "title": seed.title.en,
        "protocol_version": "1.2",
        "protocol_sha256": seed.digest,
    }
    assert data["screening"]["code"] == "S-700" and data["screening"]["status"] == "eligible"
    assert data["screening"]["signed_by"] == {
        "telegram_id": ALICE,
        "name": "Alice",
        "role": "coordinator",
    }
    events = data["events"]
    first = next(e for e in events if e["kind"] == "answer_recorded")
    assert (
        first["payload"]["question"],
        first["payload"]["raw"],
        first["actor_name"],
        first["actor_role"],
    ) == ("consent_signed", "yes", "Alice", "coordinator")
    assert first["at"].endswith("+00:00") and first["at_local"].endswith("+08:00")
    corrected = next(e for e in events if e["kind"] == "answer_corrected")
    assert corrected["payload"]["previous_normalised"] == "45 years"
    assert corrected["payload"]["normalised"] == "47 years"
    assert corrected["payload"]["reason"] == "age taken from the wrong visit"
    decision = next(e for e in events if e["kind"] == "decision_recorded")
    assert decision["actor_name"] == "Dr Bob" and decision["payload"]["approve"] is True
    assert events[-1]["kind"] == "screening_signed"
    assert "I confirm these answers reflect the source documents." in events[-1]["description"]
    criteria = {c["number"]: c for c in data["criteria"]}
    assert criteria["8.2"]["outcome"] == "not met"
    assert (
        "Investigator approved: collection feasible after transfusion"
        in criteria["8.2"]["explanation"]
    )
    assert criteria["3"]["explanation"] == ["Age: 47 years; required between 14 and 80 (inclusive)"]
    assert data["chain"]["verified"] and data["chain"]["head"] == events[-1]["hash"]


def test_csv_has_a_row_per_event(transcript: Transcript) -> None:
    rows = list(csv.DictReader(io.StringIO(transcript_csv(transcript))))
    assert len(rows) == len(transcript.events)
    corrected = next(r for r in rows if r["kind"] == "answer_corrected")
    assert (
        corrected["question"],
        corrected["previous"],
        corrected["normalised"],
        corrected["reason"],
        corrected["actor_name"],
    ) == ("age", "45 years", "47 years", "age taken from the wrong visit", "Alice")


def test_pdf_text_reads_back(transcript: Transcript) -> None:
    reader = PdfReader(io.BytesIO(transcript_pdf(transcript)))
    pages = [page.extract_text() for page in reader.pages]
    text = " ".join("\n".join(pages).split())  # line breaks fall where the page is narrow
    assert len(pages) > 1
    assert pages[0].startswith("cd19-cart-ball-consolidation v1.2 · Screening S-700")
    assert (
        f"Page 1 of {len(pages)}" in pages[0] and f"Page {len(pages)} of {len(pages)}" in pages[-1]
    )
    assert transcript.chain.head in text
    assert "generated 2026-11-03 12:00 UTC" in text
    assert "Criterion 8.2: not met" in text
    assert "reason for change: age taken from the wrong visit" in text
    assert "Signed by Alice (coordinator" in text
    assert "≤ 2× ULN" in text  # the Unicode font renders lab notation


def test_pdf_shows_what_its_font_cannot_draw_as_code_points(seed: Protocol) -> None:
    repo = InMemoryRepository()
    repo.save_staff(Staff(ALICE, "张三", Role.COORDINATOR))
    s = answer_all(repo, seed, begin(repo, seed, "S-702"))
    s = repo.close(s, "signed", actor=ALICE, reason="确认")
    pdf = transcript_pdf(build_transcript(repo, s, seed, timezone="UTC", now=NOW))
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Signed by <U+5F20><U+4E09> (coordinator" in " ".join(text.split())
    assert "<U+786E><U+8BA4>" in text


def test_verify_fails_on_a_tampered_export(transcript: Transcript) -> None:
    data = transcript_json(transcript)
    assert verify_transcript_json(data).ok
    edited = copy.deepcopy(data)
    edited["events"][5]["payload"]["raw"] = "tampered"
    report = verify_transcript_json(edited)
    assert not report.ok and report.broken_at == 6 and "altered" in (report.problem or "")
    deleted = copy.deepcopy(data)
    del deleted["events"][3]
    assert verify_transcript_json(deleted).broken_at == 4
    moved = copy.deepcopy(data)
    moved["events"][2]["at"] = "2020-01-01T00:00:00+00:00"
    assert verify_transcript_json(moved).broken_at == 3


runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: Protocol) -> SqlRepository:
    url = f"sqlite:///{tmp_path / 'export.sqlite3'}"
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    repo = SqlRepository(engine)
    rich_screening(repo, seed, "S-701")
    answer_all(repo, seed, begin(repo, seed, "S-702"), age="12")
    answer_all(repo, seed, begin(repo, seed, "S-703"), age="90")
    answer_all(repo, seed, begin(repo, seed, "S-704"), creatinine="3x ULN")
    answer(repo, seed, begin(repo, seed, "S-705"))
    return repo


def test_cli_export_zip_and_verify_file(db: SqlRepository, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "all.zip"])
    assert result.exit_code == 0 and "5 screening(s) exported to all.zip" in result.output
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        names = sorted(archive.namelist())
        assert len(names) == 15 and "S-701/S-701.pdf" in names
        (tmp_path / "S-701.json").write_bytes(archive.read("S-701/S-701.json"))
    only = runner.invoke(
        app, ["export", "ineligible.zip", "--status", "ineligible", "--formats", "json"]
    )
    assert "3 screening(s)" in only.output
    with zipfile.ZipFile(tmp_path / "ineligible.zip") as archive:
        assert sorted(archive.namelist()) == [f"S-70{i}/S-70{i}.json" for i in (2, 3, 4)]
    assert runner.invoke(app, ["export", "none.zip", "--code", "NOPE-1"]).exit_code == 1

    ok = runner.invoke(app, ["audit", "verify", "--file", "S-701.json"])
    assert ok.exit_code == 0 and "S-701: OK" in ok.output
    data = json.loads((tmp_path / "S-701.json").read_text())
    data["events"][4]["actor"] = 666
    (tmp_path / "S-701.json").write_text(json.dumps(data))
    bad = runner.invoke(app, ["audit", "verify", "--file", "S-701.json"])
    assert bad.exit_code == 1 and "S-701: BROKEN at event 5" in bad.output


def test_cli_report(db: SqlRepository, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--out", "log.csv", "--chart", "log.png"])
    assert result.exit_code == 0, result.output
    month = datetime.now(UTC).strftime("%Y-%m")
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert rows == [
        {
            "trial": "cd19-cart-ball-consolidation",
            "period": month,
            "screened": "5",
            "eligible": "1",
            "ineligible": "3",
            "needs_review": "0",
            "pending": "0",
            "in_progress": "1",
            "cancelled": "0",
            "not_completed": "0",
        }
    ]
    criteria = list(csv.DictReader((tmp_path / "log-criteria.csv").open()))
    assert [(r["criterion"], r["ineligible"]) for r in criteria] == [("3", "2"), ("7.1", "1")]
    assert "S-70" not in (tmp_path / "log.csv").read_text()  # no identifiers
    assert (tmp_path / "log.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zip_is_written_one_transcript_at_a_time(seed: Protocol) -> None:
    """The writer consumes a generator lazily: it never needs the whole list."""
    repo = InMemoryRepository()
    made = [begin(repo, seed, f"Z-{i}") for i in range(3)]
    pulled: list[str] = []

    def transcripts() -> Iterator[Transcript]:
        for s in made:
            pulled.append(s.code)
            yield build_transcript(repo, s, seed, timezone="UTC", now=NOW)

    target = io.BytesIO()
    assert write_zip(target, transcripts(), ["json"]) == 3
    assert pulled == ["Z-0", "Z-1", "Z-2"]
    # Each member is the transcript's JSON, as UTF-8.
    with zipfile.ZipFile(target) as archive:
        for s in made:
            expected = transcript_json(build_transcript(repo, s, seed, timezone="UTC", now=NOW))
            assert json.loads(archive.read(f"{s.code}/{s.code}.json").decode()) == expected


def test_long_words_and_typed_line_breaks_fit_the_page() -> None:
    link = "https://example.org/" + "x" * 300
    lines = wrap(f"see {link}\nnext line", REGULAR, 8, WIDTH)
    assert lines[0] == "see" and lines[-1] == "next line"
    assert "".join(lines[1:-1]) == link and len(lines) > 3
    assert all(stringWidth(line, REGULAR, 8) <= WIDTH for line in lines)


def test_pdf_keeps_a_long_reason_whole_and_dates_itself(seed: Protocol) -> None:
    repo = InMemoryRepository()
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    s = answer_all(repo, seed, begin(repo, seed, "S-706"))
    reason = "source: https://ehr.example.org/" + "a1" * 120
    s = repo.close(s, "signed", actor=ALICE, reason=reason)
    reader = PdfReader(
        io.BytesIO(transcript_pdf(build_transcript(repo, s, seed, timezone="UTC", now=NOW)))
    )
    text = "".join("".join(p.extract_text() for p in reader.pages).split())
    assert reason.replace(" ", "") in text
    assert reader.metadata is not None and reader.metadata.creation_date == NOW
    assert reader.metadata.title == "Screening transcript S-706"


def test_pdfs_drawn_by_worker_processes_equal_those_drawn_here(seed: Protocol) -> None:
    repo = InMemoryRepository()
    made = [answer_all(repo, seed, begin(repo, seed, f"W-{i}")) for i in range(12)]
    transcripts = [build_transcript(repo, s, seed, timezone="UTC", now=NOW) for s in made]

    def members(workers: int) -> dict[str, bytes]:
        target = io.BytesIO()
        assert write_zip(target, transcripts, ["pdf", "json"], workers=workers) == len(made)
        with zipfile.ZipFile(target) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    here, there = members(1), members(2)
    assert len(here) == 24 and here == there

    # Finished documents come back in the order given, and only a few wait at any time.
    with PdfRenderer(2) as renderer:
        names: list[str] = []
        for i, t in enumerate(transcripts):
            names += [name for name, _ in renderer.submit(str(i), transcript_document(t))]
            assert len(names) >= i + 1 - renderer.most_waiting
        names += [name for name, _ in renderer.finish()]
    assert names == [str(i) for i in range(len(transcripts))]


def test_bulk_transcripts_read_trails_a_page_at_a_time(seed: Protocol) -> None:
    repo = InMemoryRepository()
    made = [answer(repo, seed, begin(repo, seed, f"P-{i}")) for i in range(5)]
    pulled: list[str] = []
    pages: list[list[str]] = []
    read_trails = repo.audit_trails

    def trails(codes: Sequence[str]) -> dict[str, list[AuditEntry]]:
        pages.append(list(codes))
        return read_trails(codes)

    repo.audit_trails = trails  # type: ignore[method-assign]

    def screenings() -> Iterator[Screening]:
        for s in made:
            pulled.append(s.code)
            yield s

    bulk = build_transcripts(repo, screenings(), lambda _: seed, timezone="UTC", now=NOW, page=2)
    first = next(bulk)
    assert pulled == ["P-0", "P-1"] and pages == [["P-0", "P-1"]]
    rest = list(bulk)
    assert pages == [["P-0", "P-1"], ["P-2", "P-3"], ["P-4"]]
    one_by_one = [build_transcript(repo, s, seed, timezone="UTC", now=NOW) for s in made]
    assert [first, *rest] == one_by_one


def test_pdf_event_lines_give_utc_and_the_sites_time(transcript: Transcript) -> None:
    texts = [p.text for p in transcript_document(transcript).paragraphs]
    shanghai = ZoneInfo("Asia/Shanghai")
    for e in transcript.events:
        at = e.entry.at
        line = (
            f"#{e.entry.seq} {at:%Y-%m-%d %H:%M:%S} UTC "
            f"({at.astimezone(shanghai):%H:%M} Asia/Shanghai) · "
            f"{e.actor.name} ({e.actor.role}, {e.entry.actor})"
        )
        assert line in texts
    assert transcript.events[0].local.utcoffset() == timedelta(hours=8)
