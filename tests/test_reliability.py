"""Reliability under hostile input, repeated and out-of-order deliveries, lost access, locks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.application import build_application
from bot.cli import app as cli
from bot.results import Recorded
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN, Settings
from flows import Catalog, Protocol, current_question
from storage.db import make_engine, upgrade
from storage.memory import InMemoryRepository
from storage.records import Role, Screening, Staff
from storage.sql import SqlRepository
from tests.bot_fixtures import ADMIN, ALICE, BotWorld, start_world
from tests.conftest import SEED_FILE
from tests.flows_helpers import ELIGIBLE_WOMAN
from tests.telegram_fake import Chat, FakeBotAPI

SEED: Protocol = __import__("flows").load_protocol(SEED_FILE)
FUZZED = 400  # reported in the README

ODD_UNITS = ["g/dL", "mmol/L", "%", "×10^9/L", "/µL", "ULN", "x ULN", "µkat/L", "kg", "倍", ""]
# Telegram delivers no message with empty text; everything else may arrive.
hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(categories=["So", "Sk", "Cs", "Co", "Zs"]), max_size=40),
    st.builds(
        lambda n, u: f"{n} {u}",
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(10**30), 10**30),
            st.decimals(allow_nan=True),
        ),
        st.sampled_from(ODD_UNITS),
    ),
    st.sampled_from(
        [
            "'; DROP TABLE answer; --",
            "<b>bold</b> *x* _y_ [z](http://x) `c`",
            "🩸🧪💉 9.5 g/dL 😀",
            "1,200/µL",
            "1e400",
            "-0",
            "NaN",
            "∞",
            "١٢٣",
            "Hb 9.5 g/dL, ANC",
            "Hb , ANC , PLT",
            "x" * 5000,
            "\u202e\u0000\u200b",
        ]
    ),
    st.text(min_size=1000, max_size=5000, alphabet="0123456789., /µgLdxU"),
).filter(lambda text: text != "")


def positions() -> list[str]:
    """The question ids of the eligible woman's screening, in order."""
    return [q for q in ELIGIBLE_WOMAN]


def test_fuzzed_free_text_at_every_question() -> None:
    """Hostile text at any question: no unhandled error, every reply valid and within limits."""
    loop = asyncio.new_event_loop()
    repo = InMemoryRepository()
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    service = ScreeningService(repo, Catalog((SEED,)), DEFAULT_CODE_PATTERN)
    api = FakeBotAPI()
    app = build_application(
        service, Settings(bot_token="1:fuzz", _env_file=None), request=api, rate_limit=False
    )
    errors: list[BaseException] = []

    async def record(update: object, context: Any) -> None:
        errors.append(context.error)

    app.add_error_handler(record)
    loop.run_until_complete(app.initialize())
    chat = Chat(app, api, ALICE)
    counter = iter(range(10**9))

    def at_question(index: int) -> Screening:
        created = service.begin(f"F-{next(counter)}", SEED, actor=ALICE)
        assert isinstance(created, Screening)
        screening = created
        for qid in positions()[:index]:
            question = current_question(SEED, screening.state)
            assert question is not None and question.id == qid
            outcome = service.answer_text(
                screening, ELIGIBLE_WOMAN[qid], actor=ALICE, confirmed=True
            )
            assert isinstance(outcome, Recorded)
            screening = outcome.screening
        repo.set_current_screening(ALICE, screening.id)
        return screening

    @settings(
        max_examples=FUZZED,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.integers(0, len(positions()) - 1), hostile_text)
    def check(index: int, text: str) -> None:
        screening = at_question(index)
        before = len(api.sent)
        loop.run_until_complete(chat.send(text))
        assert errors == []
        replies = api.sent[before:]
        assert replies, "every message gets an answer"
        for reply in replies:
            assert 0 < len(reply["text"]) <= 4096
            for row in reply.get("reply_markup", {}).get("inline_keyboard", []):
                assert all(len(b["callback_data"].encode()) <= 64 for b in row)
        after = repo.get_screening(screening.id)
        assert after is not None
        recorded = len(repo.answers(screening.id)) - index
        assert recorded in (0, 1)  # one answer at most, and only a valid one
        if recorded == 0:
            assert after.state == screening.state

    try:
        check()
    finally:
        loop.run_until_complete(app.shutdown())
        loop.close()


async def test_a_burst_of_taps_records_one_answer(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new R-201")
    question = alice.last_message()
    replies = []
    for _ in range(5):
        replies += await alice.press("Yes", message=question)
    s = world.repo.find_screening("R-201")
    assert s is not None and len(world.repo.answers(s.id)) == 1 and s.row_version == 2
    assert sum("outdated" in r for r in replies) == 4


async def test_out_of_order_and_repeated_deliveries(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new R-202")
    first = alice.last_message()
    await alice.press("Yes", message=first)
    newer = alice.last_update
    second = alice.last_message()
    await alice.press("Yes", message=second)
    # The first tap is delivered again, late, after the second: nothing is recorded.
    assert await alice.redeliver() == []  # the newest update, repeated
    alice.last_update = newer
    assert await alice.redeliver() == []  # an older update, repeated out of order
    late = await alice.press("No", message=first)  # a different, late tap on the first question
    assert "outdated" in late[0]
    s = world.repo.find_screening("R-202")
    assert s is not None and [a.status for a in world.repo.answers(s.id)] == ["active"] * 2


async def test_removed_staff_lose_access_mid_screening(world: BotWorld) -> None:
    alice, admin = world.chat(ALICE), world.chat(ADMIN, "Admin")
    await alice.send("/new R-203")
    question = alice.last_message()
    await admin.send(f"/staff remove {ALICE}")
    reply = await alice.press("Yes", message=question)
    assert reply == []  # a callback: refused with an alert, nothing sent to the chat
    assert "only for authorised research staff" in str(world.api.methods("answerCallbackQuery")[-1])
    assert "only for authorised research staff" in (await alice.send("45"))[0]
    s = world.repo.find_screening("R-203")
    assert s is not None and world.repo.answers(s.id) == []


async def test_locked_database_is_reported_and_recovers(tmp_path: Path, seed: Protocol) -> None:
    path = tmp_path / "locked.sqlite3"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=200)
    upgrade(engine)
    SqlRepository(engine).save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    world = await start_world(engine, seed)
    try:
        alice = world.chat(ALICE)
        await alice.send("/new R-204")
        question = alice.last_message()
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            reply = await alice.press("Yes", message=question)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert "database cannot be reached right now, so nothing was recorded" in reply[0]
        assert len(world.errors) == 1
        world.errors.clear()
        s = world.repo.find_screening("R-204")
        assert s is not None and world.repo.answers(s.id) == [] and s.row_version == 1
        # The lock is gone: the same tap now works, without restarting anything.
        retry = await alice.press("Yes", message=question)
        assert "subject willing and able to comply" in retry[0]
        assert world.errors == []
    finally:
        await world.app.shutdown()
        engine.dispose()


def test_unreachable_database_at_start_is_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "PRESCREEN_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    )
    result = CliRunner().invoke(cli, ["staff", "list"])
    assert result.exit_code == 2
    assert (
        "cannot reach the database postgresql+psycopg://nobody:***@127.0.0.1:1/none"
        in result.output
    )
    assert "secret" not in result.output


async def test_buttons_of_a_screening_put_aside_record_nothing(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new R-205")
    first = alice.last_message()  # still the current question of R-205
    await alice.send("/new R-206")  # the coordinator moves on to another screening
    reply = await alice.press("Yes", message=first)
    assert reply == [
        "That button belongs to screening R-205, which you have put aside; "
        "nothing was recorded. Use /resume to continue it."
    ]
    aside = world.repo.find_screening("R-205")
    assert aside is not None and world.repo.answers(aside.id) == []
    await alice.send("/resume")
    await alice.press("R-205")
    assert "willing and able to comply" in (await alice.press("Yes"))[0]


async def test_other_sites_screenings_stay_closed(world: BotWorld) -> None:
    repo = world.repo
    repo.save_staff(Staff(6001, "North coordinator", Role.COORDINATOR, site="North"))
    repo.save_staff(Staff(6002, "North investigator", Role.INVESTIGATOR, site="North"))
    repo.save_staff(Staff(6003, "South investigator", Role.INVESTIGATOR, site="South"))
    north, north_pi, south_pi = (world.chat(6001), world.chat(6002, "N"), world.chat(6003, "S"))
    await north.send("/new N-101")
    for label in ("Yes", "Yes", "B-ALL, refractory"):
        await north.press(label)
    await north.send("2")
    for label in ("No", "No", "No suitable donor"):
        await north.press(label)
    await north.send("45")
    for label in ("Male", "1", "Yes", "Yes"):
        await north.press(label)
    await north.send("Cr 0.5x ULN, LVEF 60, SpO2 97, Bili 0.5x ULN, ALT 0.5x ULN, AST 0.5x ULN")
    await north.press("✔ Record")
    await north.press("Yes")
    await north.send("Hb 70, ANC 1.5, PLT 150")
    await north.press("✔ Record")
    await north.press("No")
    assert "Needs the investigator's decision" in north.last_text()
    s = repo.find_screening("N-101")
    assert s is not None and s.site == "North" and s.status == "needs_review"
    # Only the investigator of the same site (and those without a site) is told and sees it.
    assert "N-101 needs your decision" in north_pi.last_text()
    assert "N-101" not in south_pi.last_text()
    await north_pi.send("/review")
    assert "N-101" in str(north_pi.last_message()["reply_markup"])
    assert await south_pi.send("/review") == ["No screenings await a decision."]
    # A South investigator replaying the North review button is refused; nothing recorded.
    review_button = north_pi.last_message()
    assert await south_pi.press("N-101", message=review_button) == []
    assert "You may not open screening" in str(world.api.methods("answerCallbackQuery")[-1])
    after = repo.find_screening("N-101")
    assert after is not None and after.row_version == s.row_version
