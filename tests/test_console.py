from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bot.console import Console
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN
from flows import Catalog, Protocol
from flows.text import Lang
from storage.db import make_engine, upgrade
from storage.repository import Repository
from storage.sql import SqlRepository
from tests.flows_helpers import ELIGIBLE_WOMAN


def session(
    repo: Repository,
    seed: Protocol | Catalog,
    lines: list[str],
    actor: int = 0,
    lang: Lang = "en",
) -> list[str]:
    """The console's output for ``lines`` typed in turn, on the seed trial or a catalogue."""
    out: list[str] = []
    feed: Iterator[str] = iter(lines)

    def read(prompt: str) -> str:
        out.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    catalog = seed if isinstance(seed, Catalog) else Catalog((seed,))
    service = ScreeningService(repo, catalog, DEFAULT_CODE_PATTERN)
    Console(service, actor=actor, lang=lang, read=read, write=out.append).run()
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
    assert out[-5].startswith("Question 5 · up to 21 more · Criterion 2\nAre there any blasts")
    # Ctrl-D (end of input) leaves the screening, and says so.
    assert out[-1] == "The screening S-300 is kept; `prescreen console` and /resume continue it."


ORGAN_AND_BLOOD = (
    "Cr 0.8x ULN, LVEF 60, SpO2 97, Bili 10 umol/L ULN 21, ALT 30 ULN 40, "
    "AST 35 ULN 40, Hb 9.5 g/dL, ANC 1200/µL, PLT 150"
)


def test_a_lab_panel_in_one_line_is_recorded_question_by_question(seed: Protocol) -> None:
    from storage.memory import InMemoryRepository

    repo = InMemoryRepository()
    answers = list(ELIGIBLE_WOMAN.values())
    creatinine = list(ELIGIBLE_WOMAN).index("creatinine")
    out = session(
        repo,
        seed,
        ["/new S-310", *answers[:creatinine], ORGAN_AND_BLOOD, "yes", "yes", "yes", "negative"],
    )
    text = "\n".join(out)
    assert "  • Hemoglobin: 9.5 g/dL = 95 g/L" in text
    assert "Record these values? [yes/no] " in out
    assert "✔ Creatinine: 0.8× ULN" in out
    # Values for questions after venous access wait for it, then are recorded in turn.
    assert out.index("✔ Hemoglobin: 9.5 g/dL = 95 g/L") > out.index("✔ Venous access: Yes")
    screening = repo.find_screening("S-310")
    assert screening is not None and screening.state.at == "contraception"
    assert {q for q in ELIGIBLE_WOMAN if q in screening.state.answers} == set(
        list(ELIGIBLE_WOMAN)[: list(ELIGIBLE_WOMAN).index("contraception")]
    )
    # One audit event per answer, as if each had been typed at its question.
    recorded = [e for e in repo.audit_events("S-310") if e.kind == "answer_recorded"]
    assert len(recorded) == len(screening.state.answers)


def test_a_refused_value_in_a_panel_records_nothing(seed: Protocol) -> None:
    from storage.memory import InMemoryRepository

    repo = InMemoryRepository()
    answers = list(ELIGIBLE_WOMAN.values())
    creatinine = list(ELIGIBLE_WOMAN).index("creatinine")
    out = session(repo, seed, ["/new S-311", *answers[:creatinine], "Cr 0.8x ULN, LVEF banana"])
    assert any(line.startswith("✖ LVEF") for line in out), out
    screening = repo.find_screening("S-311")
    assert screening is not None and screening.state.at == "creatinine"


def test_back_without_a_number_lists_the_answers(seed: Protocol) -> None:
    from storage.memory import InMemoryRepository

    out = session(
        InMemoryRepository(), seed, ["/new S-320", "yes", "yes", "1", "/back", "/back 9", "/back 2"]
    )
    assert "  1) Informed consent: yes" in out
    assert "  3) Diagnosis: B-ALL, newly diagnosed" in out
    assert "Change one with /back N." in out
    assert "✖ There is no answer 9; /back lists them." in out
    assert any(
        line.startswith("Question 2 ·")
        for line in out[out.index("✖ There is no answer 9; /back lists them.") :]
    )


def test_new_asks_which_trial_when_several_are_loaded(seed: Protocol) -> None:
    from storage.memory import InMemoryRepository

    other = seed.model_copy(update={"id": "second_trial"})
    out: list[str] = []
    feed = iter(["/new S-330", "7", "/new S-330", "2", "/quit"])

    def read(prompt: str) -> str:
        out.append(prompt)
        return next(feed)

    repo = InMemoryRepository()
    service = ScreeningService(repo, Catalog((seed, other)), DEFAULT_CODE_PATTERN)
    Console(service, actor=0, read=read, write=out.append).run()
    assert "Which trial? [a, 1-2] " in out
    assert "  a) All 2 trials together" in out
    assert "✖ No trial chosen; nothing was started." in out
    screening = repo.find_screening("S-330")
    assert screening is not None and screening.protocol_id == "second_trial"


def _pass_session(lines: list[str], lang: Lang = "en") -> tuple[list[str], Repository]:
    from flows.loader import BUNDLED_DIR, load_catalog
    from storage.memory import InMemoryRepository

    repo = InMemoryRepository()
    return session(repo, load_catalog([BUNDLED_DIR]), lines, lang=lang), repo


def test_a_pass_over_both_trials_asks_shared_questions_once() -> None:
    """The seed trial first; the bridge trial then takes age, sex and ECOG from it."""
    out, repo = _pass_session(["/new P-330", "a", *ELIGIBLE_WOMAN.values(), "yes", "no", "/quit"])
    assert any(
        line.startswith("Screening P-330 started against 2 trials, shared questions asked once:")
        for line in out
    )
    assert sum("Age in years?" in line for line in out) == 1
    assert (
        "CD19 CAR-T consolidation in B-ALL patients ineligible for allo-HSCT: eligible · "
        "ThisCART19A bridging to allo-HSCT in R/R B-ALL: not eligible, criterion 3 "
        "(Intention to HSCT: no)"
    ) in out
    bridge = repo.find_screening("P-330/thiscart19a-bridge")
    assert bridge is not None and bridge.status == "ineligible"
    shared = {a.question_id: a.raw_text for a in repo.answers(bridge.id)}
    assert shared["sex"] == "[shared from P-330/cd19-cart-ball-consolidation]"


def test_a_pass_in_chinese() -> None:
    out, repo = _pass_session(["/new P-331", "a", "否", "/quit"], lang="zh")
    assert "  a) 全部 2 个试验一起筛选" in out
    assert any(line.startswith("筛选 P-331 已开始，同时筛选 2 个试验") for line in out)
    assert any("不符合，标准 1" in line and "进行中" in line for line in out)
    seed = repo.find_screening("P-331/cd19-cart-ball-consolidation")
    assert seed is not None and seed.status == "ineligible"
