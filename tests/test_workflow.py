"""The screening workflow to the letter, the same through the console and the bot.

Only an eligible screening is signed; a pending one stays open until its result is entered, or
is closed as not completed with a reason; only investigators decide, by the criterion's number.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

from flows import Protocol, current_question
from reports.exporters import transcript_json, transcript_pdf
from reports.transcript import build_transcript
from storage.memory import InMemoryRepository
from storage.records import Role, Staff
from tests.bot_fixtures import ALICE, CHEN, BotWorld
from tests.flows_helpers import ELIGIBLE_WOMAN
from tests.test_console import session
from tests.test_outcome_messages import drive

PI = 7
PENDING_LVEF = {**ELIGIBLE_WOMAN, "lvef": "unknown"}
REVIEW_AND_PENDING = {**ELIGIBLE_WOMAN, "lvef": "unknown", "hemoglobin": "70"}
REVIEW_ONLY = {**ELIGIBLE_WOMAN, "hemoglobin": "70"}


def console(
    repo: InMemoryRepository, seed: Protocol, lines: list[str], actor: int = 0
) -> list[str]:
    return session(repo, seed, lines, actor)


def test_only_an_eligible_screening_is_signed(seed: Protocol) -> None:
    for code, chart in (("W-101", PENDING_LVEF), ("W-102", REVIEW_ONLY)):
        repo = InMemoryRepository()
        out = console(repo, seed, [f"/new {code}", *chart.values(), "/sign"])
        assert any("Only an eligible screening can be signed" in line for line in out), code
        s = repo.find_screening(code)
        assert s is not None and s.unfinished and s.close_kind is None


def test_results_entered_while_a_decision_is_outstanding(seed: Protocol) -> None:
    repo = InMemoryRepository()
    out = console(repo, seed, ["/new W-103", *REVIEW_AND_PENDING.values(), "/complete", "60"])
    text = "\n".join(out)
    assert "There is nothing pending to complete" not in text
    assert "✔ LVEF: 60 %" in text
    s = repo.find_screening("W-103")
    assert s is not None and s.status == "needs_review"
    assert s.state.answers["lvef"] != "unknown"


def test_closed_as_not_completed_with_a_reason(seed: Protocol) -> None:
    repo = InMemoryRepository()
    out = console(repo, seed, ["/new W-104", *PENDING_LVEF.values(), "/incomplete"])
    assert "✖ Please give a reason." in out
    out = console(repo, seed, ["/resume 1", "/incomplete echo will not be done"])
    assert "Screening W-104 closed (closed as not completed)." in out
    s = repo.find_screening("W-104")
    assert s is not None and (s.close_kind, s.status) == ("not_completed", "not_completed")
    assert s.close_reason == "echo will not be done"
    transcript = build_transcript(repo, s, seed, timezone="UTC", now=s.updated_at)
    assert transcript.status == "closed as not completed"
    events = [e["description"] for e in transcript_json(transcript)["events"]]
    assert "Screening closed as not completed: echo will not be done" in events


def test_an_exclusion_confirmed_without_a_reason_prints_none(seed: Protocol) -> None:
    repo = InMemoryRepository()
    out = console(repo, seed, ["/new W-105", "yes", "yes", "Other", "/confirm"])
    del out
    s = repo.find_screening("W-105")
    assert s is not None and s.close_kind == "exclusion_confirmed"
    pdf = transcript_pdf(build_transcript(repo, s, seed, timezone="UTC", now=s.updated_at))
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Closed (exclusion confirmed)." in text
    assert "Closed (exclusion confirmed):" not in text


def test_decisions_by_the_number_shown_and_only_by_investigators(seed: Protocol) -> None:
    repo = InMemoryRepository()
    repo.save_staff(Staff(PI, "Dr Pi", Role.INVESTIGATOR))
    console(repo, seed, ["/new W-106", *REVIEW_ONLY.values()], actor=PI)
    # A misspelt verb is refused with the valid ones; nothing is recorded.
    out = console(repo, seed, ["/resume 1", "/decide 8.2 aprove counts recovering"], actor=PI)
    assert any("approve|reject" in line for line in out)
    s = repo.find_screening("W-106")
    assert s is not None and s.state.decisions == {}
    # The console's own user is not an investigator.
    out = console(repo, seed, ["/new W-107", *REVIEW_ONLY.values(), "/decide 8.2 approve ok"])
    assert any("Only an investigator or an admin can decide" in line for line in out)
    out = console(repo, seed, ["/resume 1", "/decide 8.2 approve counts recovering"], actor=PI)
    s = repo.find_screening("W-106")
    assert s is not None and s.state.decisions["I8.2"].approve
    assert s.status == "eligible"


def test_numbered_menus_are_not_ambiguous(seed: Protocol) -> None:
    repo = InMemoryRepository()
    answers = list(ELIGIBLE_WOMAN.values())
    ecog = list(ELIGIBLE_WOMAN).index("ecog")
    out = console(repo, seed, ["/new W-108", *answers[:ecog], "5", "3"])
    assert "  [0 / 1 / 2 / 3 / 4 / unknown]" in out  # labels that are numbers: not numbered
    assert any("Please pick one of: 0, 1, 2, 3, 4" in line for line in out)  # "5": no option
    assert "✔ ECOG: 3" in out
    s = repo.find_screening("W-108")
    assert s is not None and s.status == "ineligible"
    assert any(line.startswith("  [1) B-ALL, newly diagnosed / 2) ") for line in out)


async def test_the_bot_closes_a_pending_screening_as_not_completed(world: BotWorld) -> None:
    await drive(world, PENDING_LVEF)
    alice = world.chat(ALICE)
    await alice.press("Close as not completed")
    assert "Why can this screening not be completed" in alice.last_text()
    assert await alice.send("patient withdrew") == ["Screening M-101 closed as not completed."]
    s = world.repo.find_screening("M-101")
    assert s is not None and s.close_kind == "not_completed"


async def test_the_bot_takes_results_while_a_decision_is_outstanding(world: BotWorld) -> None:
    await drive(world, REVIEW_AND_PENDING)
    alice = world.chat(ALICE)
    reply = await alice.press("Results arrived")
    assert "LVEF" in reply[-1]
    await alice.send("60")
    s = world.repo.find_screening("M-101")
    assert s is not None and s.status == "needs_review"
    chen = world.chat(CHEN, "Dr Chen")
    await chen.send("/review")
    await chen.press("M-101")
    await chen.press("Approve 8.2")
    await chen.send("counts recovering")
    s = world.repo.find_screening("M-101")
    assert s is not None and s.status == "eligible"


async def test_a_label_before_one_value_is_read_at_its_question(world: BotWorld) -> None:
    await drive(world, ELIGIBLE_WOMAN, stop_at="hemoglobin")
    alice = world.chat(ALICE)
    await alice.send("ANC 1.2")
    assert "'ANC' labels another value (ANC); this question asks for Hemoglobin" in (
        alice.last_text()
    )
    reply = await alice.send("Hb 9.5 g/dL")
    assert "✔ 9.5 g/dL = 95 g/L" in reply[0]
    s = world.repo.find_screening("M-101")
    assert s is not None and s.state.answers["hemoglobin"].value == 95  # type: ignore[union-attr]
    # A comma that may be a decimal point: the hint offers only what the question accepts.
    hint = await alice.send("1,200")
    assert "Type e.g. 1200/µL or 1.200." in hint[0]
    assert "✔ 1200/µL = 1.2 ×10⁹/L" in (await alice.send("1200/µL"))[0]


async def test_an_approval_is_marked_as_such(world: BotWorld) -> None:
    await drive(world, REVIEW_ONLY)
    chen = world.chat(CHEN, "Dr Chen")
    await chen.send("/review")
    await chen.press("M-101")
    # Typing instead of tapping is answered with a pointer to the buttons.
    reply = await chen.send("approve")
    assert "To decide, tap Approve or Reject" in reply[0]
    await chen.press("Approve 8.2")
    await chen.send("counts recovering")
    screen = world.chat(ALICE).last_text()
    await world.chat(ALICE).send("/status")
    screen = world.chat(ALICE).last_text()
    assert "Eligible: every criterion is met, except those the investigator approved (☑️)." in (
        screen
    )
    assert (
        "☑️ Criterion 8.2 · Blood counts — not met, approved by the investigator: "
        "counts recovering" in screen
    )
    assert "❌" not in screen


async def test_an_early_stop_leads_with_the_deciding_answer(world: BotWorld) -> None:
    texts = {**ELIGIBLE_WOMAN, "age": "12"}
    replies = await drive(world, texts)
    text = replies[-1]
    lines = text.split("\n")
    first = lines.index("[M-101] Not eligible: criterion 3 is not met.")
    assert lines[first + 1] == "  • Age: 12 years; required between 14 and 80 (inclusive)"
    assert lines[first + 2].startswith("Criterion 3 · Age: “Aged between 14 and 80")
    assert "⏹ Criterion 4 · ECOG — not reached (screening stopped)" in text
    assert "❓" not in text


async def test_progress_never_jumps_and_resume_buttons_fit_a_phone(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    headers: list[tuple[int, int]] = []
    await alice.send("/new M-105")
    seed = world.service.catalog.current()[0]
    while True:
        found = re.search(r"Question (\d+) · (?:up to (\d+) more|the last)", alice.last_text())
        if found is None:
            break
        headers.append((int(found[1]), int(found[2] or 0)))
        s = world.repo.find_screening("M-105")
        assert s is not None
        question = current_question(seed, s.state)
        assert question is not None
        if question.id == "sex":
            await alice.send("/resume")
            label = alice.last_message()["reply_markup"]["inline_keyboard"][0][0]["text"]
            assert label == "M-105 · question 9 · 0 min"
        await alice.send(ELIGIBLE_WOMAN[question.id])
    positions = [pos for pos, _ in headers]
    assert positions == list(range(1, len(headers) + 1))
    totals = [pos + left for pos, left in headers]
    assert totals == sorted(totals, reverse=True)  # can only shrink (skip logic)
    assert headers[-1][1] == 0


def test_no_internal_names_in_messages(seed: Protocol) -> None:
    out = console(InMemoryRepository(), seed, ["/new Jones", "/new W-109", "Other", "/confirm"])
    text = "\n".join(out)
    assert "use 3–32 letters, digits or dashes, with at least one digit" in text
    assert "^[A-Za-z0-9]" not in text
    out = console(InMemoryRepository(), seed, ["/new W-110", "yes", "yes", "Other", "/confirm"])
    assert "Screening W-110 closed (exclusion confirmed)." in out
    assert not any("exclusion_confirmed" in line or "needs_review" in line for line in out)


async def test_the_trial_is_named_by_its_short_title(world: BotWorld) -> None:
    reply = await world.chat(ALICE).send("/new M-106")
    assert "Screening M-106 started (CD19 CAR-T consolidation in B-ALL" in reply[0]
    assert "cd19-cart-ball-consolidation" not in reply[0]


def test_transitions_logs_only_problems() -> None:
    import logging

    from bot.runner import configure_logging

    configure_logging("INFO")
    assert not logging.getLogger("transitions").isEnabledFor(logging.INFO)


def test_the_console_reads_a_labelled_value_too(seed: Protocol) -> None:
    answers = list(ELIGIBLE_WOMAN.values())
    hb = list(ELIGIBLE_WOMAN).index("hemoglobin")
    out = console(
        InMemoryRepository(), seed, ["/new W-111", *answers[:hb], "ANC 1.2", "Hb 9.5 g/dL"]
    )
    assert any("'ANC' labels another value (ANC); this question asks for" in line for line in out)
    assert "✔ Hemoglobin: 9.5 g/dL = 95 g/L" in out
