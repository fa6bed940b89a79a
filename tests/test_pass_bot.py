"""A patient screened against both bundled trials in one pass, through Telegram (real
Application, fake Bot API): shared questions asked once, each trial its own record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from flows import Catalog, Protocol
from flows.loader import BUNDLED_DIR, load_protocol
from reports.chain import verify_entries
from reports.replay import verify
from reports.report import screening_log
from reports.transcript import build_transcript
from storage.records import Screening
from tests.bot_fixtures import ALICE, BotWorld
from tests.telegram_fake import Chat
from tests.test_bot import ORGAN_AND_BLOOD, criteria_1_to_6, restarted

CHOOSE = (
    "Which trials? Every active trial is ticked: tap one to leave it out, then start. "
    "Questions the trials share are asked once."
)
SEED_CODE = "P-301/cd19-cart-ball-consolidation"
BRIDGE_CODE = "P-301/thiscart19a-bridge"


@pytest.fixture
def bridge() -> Protocol:
    return load_protocol(BUNDLED_DIR / "thiscart19a_bridge_v1.yaml")


@pytest.fixture
async def both(world: BotWorld, seed: Protocol, bridge: Protocol) -> AsyncIterator[BotWorld]:
    async with restarted(world, seed, catalog=Catalog((seed, bridge))) as again:
        yield again


def found(world: BotWorld, code: str) -> Screening:
    screening = world.repo.find_screening(code)
    assert screening is not None, code
    return screening


async def seed_eligible(alice: Chat, age: str = "45") -> list[str]:
    """The seed trial's questions for an eligible woman, as in a screening of its own."""
    await criteria_1_to_6(alice, age)
    await alice.send(ORGAN_AND_BLOOD)
    await alice.press("✔ Record")
    for label in ("Yes", "Yes", "Negative"):
        await alice.press(label)
    return await alice.press("Yes")


async def test_both_trials_in_one_pass_share_their_common_answers(both: BotWorld) -> None:
    alice = both.chat(ALICE)
    assert await alice.send("/new P-301") == [CHOOSE]
    ticked = [
        b["text"] for row in alice.last_message()["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert ticked == [
        "☑ CD19 CAR-T consolidation in B-ALL patients ineligible for all…",
        "☑ ThisCART19A bridging to allo-HSCT in R/R B-ALL",
        "▶ Start (2)",
    ]
    started = await alice.press("▶ Start (2)")
    assert "Screening P-301 started against 2 trials, shared questions asked once" in started[0]
    assert f"• {SEED_CODE} (" in started[0] and f"• {BRIDGE_CODE} (" in started[0]

    # The seed trial first, exactly as alone; then the bridge trial at its own first question.
    switched = await seed_eligible(alice)
    assert (
        ": eligible · ThisCART19A bridging to allo-HSCT in R/R B-ALL: in progress" in (switched[0])
    )
    assert BRIDGE_CODE in switched[0]
    # Consent to this study is its own question; age, sex and ECOG are taken from the pass.
    after_consent = await alice.press("Yes")
    assert "intention to proceed to haematopoietic stem cell transplantation" in after_consent[0]
    asked_of_bridge = " ".join([*switched, *after_consent])
    assert "Age in years?" not in asked_of_bridge
    excluded = await alice.press("No")
    assert (
        "ThisCART19A bridging to allo-HSCT in R/R B-ALL: not eligible, criterion 3 "
        "(Intention to HSCT: no)"
    ) in excluded[0]
    assert "Every trial is decided." in excluded[0]

    seed_s, bridge_s = found(both, SEED_CODE), found(both, BRIDGE_CODE)
    assert (seed_s.status, bridge_s.status) == ("eligible", "ineligible")
    shared = {a.question_id: a.raw_text for a in both.repo.answers(bridge_s.id)}
    assert shared["age"] == f"[shared from {SEED_CODE}]"
    assert shared["sex"] == f"[shared from {SEED_CODE}]"
    assert shared["consent_signed"] != f"[shared from {SEED_CODE}]"
    ages = [
        a.value
        for s in (seed_s, bridge_s)
        for a in both.repo.answers(s.id)
        if a.question_id == "age"
    ]
    assert len(ages) == 2 and ages[0] == ages[1]
    for s in (seed_s, bridge_s):
        assert verify_entries(s.code, both.repo.audit_events(s.code)).ok
        assert verify(both.repo, s, both.service.protocol_for(s)) == [], s.code
    # The start of each trial records the trials active at the site and the pass.
    first = both.repo.audit_events(BRIDGE_CODE)[0].payload
    assert first["offered"] == ["cd19-cart-ball-consolidation", "thiscart19a-bridge"]
    assert first["pass"] == {"code": "P-301", "screenings": [SEED_CODE]}
    protocol = both.service.protocol_for(bridge_s)
    transcript = build_transcript(
        both.repo, bridge_s, protocol, timezone="UTC", now=datetime.now(UTC)
    )
    assert transcript.events[0].description.endswith(
        f"; screened in pass P-301 together with {SEED_CODE}"
    )
    # The screening log counts each trial, and the patient as screened against both.
    log = screening_log(
        (s, both.service.protocol_for(s))
        for s in both.repo.in_range(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    )
    month = datetime.now(UTC).strftime("%Y-%m")
    assert {trial: c["screened"] for (trial, _), c in log.by_status.items()} == {
        "cd19-cart-ball-consolidation": 1,
        "thiscart19a-bridge": 1,
    }
    assert log.passes_csv().splitlines() == [
        "period,trials screened,eligible for,patients",
        f"{month},cd19-cart-ball-consolidation+thiscart19a-bridge,cd19-cart-ball-consolidation,1",
    ]
    assert "P-301" not in log.passes_csv()
    # Each trial is closed on its own: the bridge trial's exclusion is confirmed separately.
    await alice.send("/resume")
    buttons = [
        b["text"] for row in alice.last_message()["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert any(SEED_CODE in b for b in buttons) and any(BRIDGE_CODE in b for b in buttons)


async def test_one_trial_chosen_is_a_screening_of_its_own(both: BotWorld) -> None:
    alice = both.chat(ALICE)
    await alice.send("/new P-302")
    await alice.press("☑ ThisCART19A")  # left out: the seed trial alone
    started = await alice.press("▶ Start (1)")
    assert "Screening P-302 started" in started[0]
    assert found(both, "P-302").protocol_id == "cd19-cart-ball-consolidation"
    # A code used in a pass cannot start a screening of its own, and the other way round.
    await alice.send("/new P-301")
    await alice.press("▶ Start (2)")
    await alice.send("/new P-301")
    await alice.press("☑ ThisCART19A")
    taken = await alice.press("▶ Start (1)")
    assert "P-301" in taken[0] and "already" in taken[0]
    await alice.send("/new P-302")
    taken = await alice.press("▶ Start (2)")
    assert "P-302" in taken[0] and "already" in taken[0]


async def test_the_pass_in_chinese(both: BotWorld) -> None:
    alice = both.chat(ALICE, lang="zh")
    await alice.send("/new P-303")
    started = await alice.press("▶ 开始（2）")
    assert "筛选 P-303 已开始，同时筛选 2 个试验，共同的问题只问一次" in started[0]
    answered = await alice.press("否")  # no consent to the seed trial: excluded at once
    assert "不符合，标准 1" in answered[0]
    assert "进行中" in answered[0]
    assert BRIDGE_CODE.replace("P-301", "P-303") in answered[0]


async def test_a_corrected_shared_answer_is_corrected_in_every_trial(both: BotWorld) -> None:
    """Age 70 suits the seed trial (14-80) but not the bridge trial (14-65); corrected to 45
    in the bridge trial, it is corrected in the seed trial with the same reason, and the
    bridge trial reopens at its next question."""
    alice = both.chat(ALICE)
    await alice.send("/new P-304")
    await alice.press("▶ Start (2)")
    await seed_eligible(alice, age="70")
    excluded = await alice.press("Yes")  # consent to the bridge trial; age 70 taken
    assert "not eligible, criterion 2 (Age: 70 years)" in excluded[0]
    seed_code, bridge_code = (c.replace("P-301", "P-304") for c in (SEED_CODE, BRIDGE_CODE))
    await alice.send("/back")
    await alice.press("Age: 70")
    await alice.send("45")
    reopened = await alice.press("Transcription error")
    assert "intention to proceed to haematopoietic stem cell transplantation" in reopened[0]
    assert (
        ": eligible · ThisCART19A bridging to allo-HSCT in R/R B-ALL: in progress" in (reopened[0])
    )
    seed_ages = [
        (a.raw_text, a.status, a.change_reason)
        for a in both.repo.answers(found(both, seed_code).id)
        if a.question_id == "age"
    ]
    assert seed_ages == [
        ("70", "superseded", "Transcription error"),
        (f"[shared from {bridge_code}]", "active", None),
    ]
    for code in (seed_code, bridge_code):
        s = found(both, code)
        assert verify(both.repo, s, both.service.protocol_for(s)) == [], code
    assert found(both, seed_code).status == "eligible"


async def test_a_pass_needs_one_trial_ticked_at_least(both: BotWorld) -> None:
    alice = both.chat(ALICE)
    await alice.send("/new P-305")
    await alice.press("☑ CD19")
    await alice.press("☑ ThisCART19A")
    await alice.press("▶ Start (0)")
    assert both.api.methods("answerCallbackQuery")[-1]["text"] == "Tick at least one trial."
    assert both.repo.find_screening(SEED_CODE.replace("P-301", "P-305")) is None
    again = await alice.press("☐ CD19")  # ticked again
    assert again == [CHOOSE]
    started = await alice.press("▶ Start (1)")
    assert "Screening P-305 started (CD19 CAR-T consolidation" in started[0]
