from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bot.console import Console
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN
from flows import Catalog, Protocol
from storage.db import make_engine, upgrade
from storage.repository import Repository
from storage.sql import SqlRepository
from tests.flows_helpers import ELIGIBLE_WOMAN


def session(repo: Repository, seed: Protocol, lines: list[str], actor: int = 0) -> list[str]:
    out: list[str] = []
    feed: Iterator[str] = iter(lines)

    def read(prompt: str) -> str:
        out.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    service = ScreeningService(repo, Catalog((seed,)), DEFAULT_CODE_PATTERN)
    Console(service, actor=actor, read=read, write=out.append).run()
    return out


def test_quit_in_the_middle_and_resume(tmp_path: Path, seed: Protocol) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    answers = list(ELIGIBLE_WOMAN.values())
    first = session(SqlRepository(engine), seed, ["/new S-200", *answers[:8], "/quit"])
    assert "Question 9 · up to 17 more · Criterion 9\nSex?" in first

    # A new process on the same database: the screening is listed and resumes at "Sex?".
    second = session(SqlRepository(engine), seed, ["/resume 1", *answers[8:], "/sign"])
    listing = next(line for line in second if "S-200" in line)
    assert "question 9" in listing
    assert second[second.index("> ") + 1].startswith("Question 9 · up to 17 more")
    assert "Eligible: every criterion is met." in second
    assert "Screening S-200 closed (signed)." in second
    assert SqlRepository(engine).unfinished(0) == []


def test_exclusion_is_explained_and_corrected(seed: Protocol) -> None:
    from storage.memory import InMemoryRepository

    out = session(
        InMemoryRepository(),
        seed,
        ["/new S-300", "yes", "yes", "1", "5", "/back marrow_blasts", "2", "/status"],
    )
    text = "\n".join(out)
    assert "Not eligible: criterion 2 is not met." in text
    assert "Bone marrow blasts: 5 %; required < 5%" in text
    assert "Reason for the change (e.g. transcription error)? " in out
    # After the correction: the next question, peripheral blasts.
    assert out[-3].startswith("Question 5 · up to 21 more · Criterion 2\nAre there any blasts")
