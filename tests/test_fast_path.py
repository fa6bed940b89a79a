"""The coordinator's fast path: a checklist for routine questions, a lab panel in one message.

It records exactly what the question-by-question path records, and stops where it stops.
"""

from __future__ import annotations

from storage.records import Screening
from tests.bot_fixtures import ALICE, BotWorld
from tests.telegram_fake import Chat

PANEL = (
    "BM blasts 2, age 45, Cr 0.8x ULN, LVEF 60, SpO2 97, Bili 10 umol/L ULN 21, ALT 30 ULN 40, "
    "AST 35 ULN 40, Hb 9.5 g/dL, ANC 1200/µL, PLT 150"
)


class Counted:
    """A chat whose every message and tap is counted: the coordinator's actions."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.actions = 0

    async def send(self, text: str) -> list[str]:
        self.actions += 1
        return await self.chat.send(text)

    async def press(self, label: str) -> list[str]:
        self.actions += 1
        return await self.chat.press(label)


def stored(world: BotWorld, code: str) -> Screening:
    found = world.repo.find_screening(code)
    assert found is not None
    return found


async def test_an_all_normal_eligible_screening_takes_ten_actions(world: BotWorld) -> None:
    alice = Counted(world.chat(ALICE))
    first = await alice.send("/new S-900")
    assert "Or answer these 10 routine questions at once" in first[0]
    await alice.press("✅ All 10 as shown")
    await alice.press("B-ALL, refractory")
    assert "💡 Type the values of the next questions in one message" in alice.chat.last_text()
    read = await alice.send(PANEL)
    assert "Age: 45 years" in read[0] and "Hemoglobin: 9.5 g/dL = 95 g/L" in read[0]
    await alice.press("✔ Record")
    await alice.press("No suitable donor")
    await alice.press("Female")
    await alice.press("1")
    done = await alice.press("Negative")
    assert "Eligible: every criterion is met." in done[0]
    signed = await alice.press("✍ Sign")
    assert "signed" in signed[0].lower()
    assert alice.actions == 10

    s = stored(world, "S-900")
    assert s.close_kind == "signed"
    answers = world.repo.answers(s.id)
    # Every question asked of this patient has its own answer and its own audit event.
    assert sorted(a.question_id for a in answers) == sorted(s.state.answers)
    assert len(answers) == 25 and "male_reproductive_potential" not in s.state.answers
    events = [e for e in world.repo.audit_events("S-900") if e.kind == "answer_recorded"]
    assert len(events) == len(answers)
    by_checklist = {
        a.question_id: a.raw_text for a in answers if (a.raw_text or "").startswith("[checklist]")
    }
    assert by_checklist == {
        "consent_signed": "[checklist] yes",
        "willing_to_comply": "[checklist] yes",
        "peripheral_blasts": "[checklist] no",
        "extramedullary": "[checklist] no",
        "cd19_positive": "[checklist] yes",
        "survival_over_3_months": "[checklist] yes",
        "venous_access": "[checklist] yes",
        "childbearing_potential": "[checklist] yes",
        "contraception": "[checklist] yes",
    }


async def test_a_changed_checklist_item_stops_exactly_where_one_at_a_time_would(
    world: BotWorld,
) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-901")
    await alice.press("✏️ Change an item")
    await alice.press("3. ")  # peripheral blasts: no → unknown
    changed = await alice.press("3. ")  # → yes, which excludes
    assert "3. Are there any blasts in the peripheral blood? — yes ✏️" in changed[0]
    await alice.press("✔ Record these answers")
    # Consent and compliance recorded; the dialog goes on to the diagnosis and the marrow.
    await alice.press("B-ALL, refractory")
    reply = await alice.send("2")
    assert "Not eligible: criterion 2 is not met." in reply[0]
    assert "✔ Peripheral blood blasts: yes (checklist)" in reply[0]
    assert "• Peripheral blood blasts: yes; required = no" in reply[0]
    s = stored(world, "S-901")
    assert s.status == "ineligible"
    recorded = [a.question_id for a in world.repo.answers(s.id)]
    # The one-at-a-time path stops at the same answer: nothing after it is recorded.
    assert recorded == [
        "consent_signed",
        "willing_to_comply",
        "diagnosis",
        "marrow_blasts",
        "peripheral_blasts",
    ]


async def test_the_checklist_speaks_chinese(world: BotWorld) -> None:
    alice = world.chat(ALICE, lang="zh-hans")
    reply = await alice.send("/new S-902")
    assert "或按下列答案一次回答这 10 个常规问题" in reply[0]
    assert alice.button("✅ 10 项全部如上")
    await alice.press("✅ 10 项全部如上")
    assert "临床诊断是什么？" in alice.last_text()


async def test_the_first_lab_question_invites_the_panel(world: BotWorld) -> None:
    from tests.test_bot import up_to_labs

    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-903")
    text = alice.last_text()
    assert "Creatinine" in text
    assert "💡 Type the values of the next questions in one message" in text
    assert "(cr, ef, sao2, bili, gpt, got, hb, neut, plt)" in text
    await alice.send("0.8x ULN")
    assert "💡" not in alice.last_text()  # LVEF: the invitation is not repeated


async def test_a_panel_says_which_values_are_still_to_come(world: BotWorld) -> None:
    from tests.test_bot import up_to_labs

    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-904")
    read = await alice.send("Cr 0.8x ULN, LVEF 60")
    assert "• Creatinine: 0.8× ULN" in read[0] and "• LVEF: 60 %" in read[0]
    assert (
        "Still to come (asked in turn): SpO2, Total bilirubin, ALT, AST, Hemoglobin, ANC, Platelets"
    ) in read[0]
