"""The audit trail covers what is stored: a replay of the events must give the stored rows.

Run against the fake, SQLite and PostgreSQL (the ``repo`` fixture); the tampering tests edit
SQLite's rows directly, as someone with write access to the database file would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.results import Recorded
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN
from flows import Catalog, Protocol
from reports.replay import verify
from storage.db import make_engine, upgrade
from storage.records import Role, Screening, Staff
from storage.repository import Repository
from storage.sql import SqlRepository
from tests.flows_helpers import ELIGIBLE_WOMAN

COORD, PI = 11, 12


def screen(repo: Repository, seed: Protocol, code: str) -> Screening:
    """A screening with a correction, a retired answer, a withdrawn and a recorded decision."""
    repo.save_staff(Staff(COORD, "Ann", Role.COORDINATOR))
    repo.save_staff(Staff(PI, "Dr Pi", Role.INVESTIGATOR))
    service = ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN)
    begun = service.begin(code, seed, actor=COORD)
    assert isinstance(begun, Screening)
    s: Screening = begun
    chart = {**ELIGIBLE_WOMAN, "hemoglobin": "70"}

    def answer(text: str, reason: str | None = None) -> None:
        nonlocal s
        outcome = service.answer_text(s, text, actor=COORD, confirmed=True, reason=reason)
        assert isinstance(outcome, Recorded), outcome
        s = outcome.screening

    while s.state.at in chart:
        answer(chart[s.state.at])
    assert s.status == "needs_review"
    for criterion, approve in (("I8.2", False),):
        decided = service.decide(s, criterion, approve, "too low", actor=PI)
        assert isinstance(decided, Recorded)
        s = decided.screening
    # A correction to sex: the woman's questions are retired, the man's asked.
    gone = service.go_back(s, "sex", actor=COORD)
    assert isinstance(gone, Recorded)
    s = gone.screening
    answer("male", reason="transcription error")
    while s.state.at in {"male_reproductive_potential", "contraception"}:
        answer("no")
    gone = service.go_back(s, "hemoglobin", actor=COORD)
    assert isinstance(gone, Recorded)
    s = gone.screening
    answer("60", reason="re-read the report")  # the rejection is withdrawn
    while s.state.at not in {"needs_review", "eligible", "excluded", "pending"}:
        answer(chart.get(s.state.at, "no"))
    decided = service.decide(s, "I8.2", True, "counts recovering", actor=PI)
    assert isinstance(decided, Recorded)
    closed = service.close(decided.screening, "signed", actor=COORD, reason="I confirm")
    assert isinstance(closed, Screening)
    return closed


def test_a_stored_screening_is_what_its_events_say(repo: Repository, seed: Protocol) -> None:
    s = screen(repo, seed, "R-101")
    assert verify(repo, s, seed) == []
    kinds = [e.kind for e in repo.audit_events("R-101")]
    assert {"answer_retired", "decision_withdrawn", "answer_corrected"} <= set(kinds)
    assert [d.withdrawn for d in repo.decisions(s.id)] == [True, False]


@pytest.fixture
def db(tmp_path: Path, seed: Protocol, monkeypatch: pytest.MonkeyPatch) -> Engine:
    path = tmp_path / "replay.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    screen(SqlRepository(engine), seed, "R-102")
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    return engine


TAMPERING = {
    "answer": "UPDATE answer SET raw_text = raw_text || 'x' WHERE id = 3",
    "answer value": "UPDATE answer SET value = replace(value, '45', '46')",
    "answer author": "UPDATE answer SET given_by = 99 WHERE id = 5",
    "decision": "UPDATE decision SET reason = 'too lox' WHERE id = 1",
    "decision withdrawn": "UPDATE decision SET withdrawn_at = NULL",
    "screening status": "UPDATE screening SET status = 'ineligible'",
    "screening close": "UPDATE screening SET close_reason = 'I confirm!'",
    "audit event": "UPDATE audit_event SET actor = 99 WHERE seq = 4",
    "deleted event": "DELETE FROM audit_event WHERE seq = 6",
    "reordered events": "UPDATE audit_event SET seq = CASE seq WHEN 5 THEN 6 WHEN 6 THEN 5 END "
    "WHERE seq IN (5, 6)",
}


def test_an_untouched_database_verifies(db: Engine) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "R-102: OK" in result.output


@pytest.mark.parametrize("change", TAMPERING, ids=list(TAMPERING))
def test_any_stored_change_fails_verification(db: Engine, change: str) -> None:
    with db.begin() as connection:
        if change == "reordered events":  # seq is unique: move one out of the way first
            connection.execute(text("UPDATE audit_event SET seq = 1000 WHERE seq = 5"))
            connection.execute(text("UPDATE audit_event SET seq = 5 WHERE seq = 6"))
            connection.execute(text("UPDATE audit_event SET seq = 6 WHERE seq = 1000"))
        else:
            assert connection.execute(text(TAMPERING[change])).rowcount >= 1
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "R-102: BROKEN at event" in result.output or (
        "R-102: FAILED verification:" in result.output
    )


def test_a_transcript_that_fails_verification_says_so(db: Engine, tmp_path: Path) -> None:
    import json
    import zipfile

    clean = CliRunner().invoke(app, ["export", "clean.zip", "--formats", "json,csv"])
    assert clean.exit_code == 0, clean.output
    with zipfile.ZipFile(tmp_path / "clean.zip") as archive:
        assert "verification" not in json.loads(archive.read("R-102/R-102.json"))
    with db.begin() as connection:
        connection.execute(text(TAMPERING["answer"]))
    result = CliRunner().invoke(app, ["export", "out.zip"])
    assert result.exit_code == 1
    assert "1 failed verification" in result.output and "R-102" in result.output
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        data = json.loads(archive.read("R-102/R-102.json"))
        assert data["verification"]["failed"] is True
        assert "answer 3 (diagnosis): raw_text" in data["verification"]["problems"][0]
        assert archive.read("R-102/R-102.csv").decode().startswith("FAILED VERIFICATION,")
        from io import BytesIO

        from pypdf import PdfReader

        pdf = PdfReader(BytesIO(archive.read("R-102/R-102.pdf")))
        assert "FAILED VERIFICATION" in pdf.pages[0].extract_text()
