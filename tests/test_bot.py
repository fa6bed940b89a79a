"""Full screenings of the seed trial through Telegram (real Application, fake Bot API)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.application import MENU
from flows import Protocol
from reports.chain import verify_entries
from storage.records import Screening
from tests.bot_fixtures import ADMIN, ALICE, CHEN, STRANGER, BotWorld, start_world
from tests.telegram_fake import Chat

ORGAN_AND_BLOOD = (
    "Cr 0.8x ULN, LVEF 60, SpO2 97, Bili 10 umol/L ULN 21, ALT 30 ULN 40, "
    "AST 35 ULN 40, Hb 9.5 g/dL, ANC 1200/µL, PLT 150"
)


async def up_to_labs(alice: Chat, code: str = "S-101", age: str = "45") -> None:
    """Answer criteria 1–6 of an eligible woman."""
    await alice.send(f"/new {code}")
    await criteria_1_to_6(alice, age)


async def criteria_1_to_6(alice: Chat, age: str = "45") -> None:
    """Answer criteria 1–6 of an eligible woman in the screening under way."""
    for label in ("Yes", "Yes", "B-ALL, refractory"):
        await alice.press(label)
    await alice.send("2")
    for label in ("No", "No", "No suitable donor"):
        await alice.press(label)
    await alice.send(age)
    if "Not eligible" in alice.last_text():
        return
    for label in ("Female", "1", "Yes", "Yes"):
        await alice.press(label)


def screening(world: BotWorld, code: str) -> Screening:
    found = world.repo.find_screening(code)
    assert found is not None
    return found


async def test_eligible_screening_in_few_actions(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice)
    batch = await alice.send(ORGAN_AND_BLOOD)
    assert "Hemoglobin: 9.5 g/dL = 95 g/L" in batch[0]
    assert "ANC: 1200/µL = 1.2 ×10⁹/L" in batch[0]
    recorded = await alice.press("✔ Record")
    assert "✔ Creatinine: 0.8× ULN (from your earlier message)" in recorded[0]
    assert "Is venous access adequate" in recorded[0]
    after_venous = await alice.press("Yes")
    assert "✔ Hemoglobin: 9.5 g/dL = 95 g/L (from your earlier message)" in after_venous[0]
    assert "Question 23 · up to 2 more" in after_venous[0]
    await alice.press("Yes")
    await alice.press("Negative")
    final = await alice.press("Yes")
    assert "Eligible: every criterion is met." in final[0]
    assert "✅ Criterion 8.2" in final[0]
    signed = await alice.press("✍ Sign")
    assert signed == ["Screening S-101 signed by Alice and closed."]
    s = screening(world, "S-101")
    assert (s.status, s.close_kind, s.close_reason) == (
        "eligible",
        "signed",
        "I confirm these answers reflect the source documents.",
    )
    assert alice.actions == 20  # reported in the README
    assert verify_entries("S-101", world.repo.audit_events("S-101")).ok
    assert {a.raw_text for a in world.repo.answers(s.id) if a.question_id == "anc"} == {"1200/µL"}


@pytest.mark.parametrize(
    ("steps", "criterion", "because"),
    [
        ([("press", "No")], "1", "Informed consent: no; required = yes"),
        (
            [("press", "Yes"), ("press", "Yes"), ("press", "Other")],
            "2",
            "Diagnosis: Other; required ∈ B-ALL, newly diagnosed",
        ),
        (
            [
                ("press", "Yes"),
                ("press", "Yes"),
                ("press", "B-ALL, newly"),
                ("press", "Yes"),
                ("send", "5 %"),
            ],
            "2",
            "Bone marrow blasts: 5 %; required < 5%",
        ),
    ],
)
async def test_early_stop_names_criterion_and_answer(
    world: BotWorld, steps: list[tuple[str, str]], criterion: str, because: str
) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-102")
    reply: list[str] = []
    for kind, arg in steps:
        reply = await (alice.press(arg) if kind == "press" else alice.send(arg))
    assert f"Not eligible: criterion {criterion} is not met." in reply[0]
    assert because in reply[0]
    assert alice.button("Confirm exclusion") and alice.button("Correct an answer")
    assert await alice.press("Confirm exclusion") == [
        "Exclusion of S-102 confirmed. Screening closed."
    ]
    assert screening(world, "S-102").close_kind == "exclusion_confirmed"


async def test_exclusion_by_age_and_by_lab(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-103", age="81")  # stops at age: the rest is never asked
    assert "Not eligible: criterion 3 is not met." in alice.last_text()
    assert "Age: 81 years; required between 14 and 80 (inclusive)" in alice.last_text()
    asked = [a.question_id for a in world.repo.answers(screening(world, "S-103").id)]
    assert asked[-1] == "age" and "sex" not in asked

    await up_to_labs(alice, "S-104")
    reply = await alice.send("2.5 mg/dL ULN 1.2")
    assert "criterion 7.1 is not met" in reply[0]
    assert "Creatinine: 221.05 µmol/L (2.083× ULN); required ≤ 2× ULN" in reply[0]


async def to_review(alice: Chat, code: str) -> None:
    """A woman not of childbearing potential whose haemoglobin is low: criterion 8.2 is left
    to the investigator."""
    await up_to_labs(alice, code)
    await alice.send("Cr 0.8x ULN, LVEF 60, SpO2 97, Bili 0.5x ULN, ALT 0.5x ULN, AST 0.5x ULN")
    await alice.press("✔ Record")
    await alice.press("Yes")
    await alice.send("Hb 7 g/dL, ANC 1.5, PLT 150")
    await alice.press("✔ Record")
    await alice.press("No")  # not of childbearing potential


async def test_review_by_investigator(world: BotWorld) -> None:
    alice, chen = world.chat(ALICE), world.chat(CHEN, "Chen")
    await to_review(alice, "S-105")
    assert "Needs the investigator's decision on criterion 8.2." in alice.last_text()
    assert "Hemoglobin: 70 g/L; required ≥ 80 g/L" in alice.last_text()
    notice = chen.last_text()
    assert notice.startswith("Screening S-105 needs your decision.")
    assert "Hemoglobin: 70 g/L; required ≥ 80 g/L" in notice and chen.button("Approve 8.2")
    assert "Investigators notified: Dr Chen (" in alice.last_text()

    assert "Screenings awaiting your decision:" in (await chen.send("/review"))[0]
    opened = await chen.press("S-105")
    assert "criterion 8.2" in opened[0]
    assert (await chen.press("Approve 8.2"))[0].startswith("Reason for your decision")
    await chen.send("Mononuclear cell collection feasible after transfusion")
    assert "Decision recorded for S-105." in chen.api.sent[-3]["text"] or any(
        "Decision recorded for S-105." in m["text"] for m in chen.api.sent
    )
    assert "Dr Chen decided on screening S-105: criterion 8.2 approved" in alice.last_text()
    s = screening(world, "S-105")
    assert s.status == "eligible" and s.state.decisions["I8.2"].approve
    assert (await alice.send("/status"))[0].count("approved by the investigator") == 1

    # A coordinator cannot review.
    assert "This needs the investigator role." in (await alice.send("/review"))[0]


async def test_pending_then_resumed_and_completed(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-106")
    await alice.send(
        "Cr 0.8x ULN, LVEF unknown, SpO2 97, Bili 0.5x ULN, ALT 0.5x ULN, "
        "AST 0.5x ULN, Hb 100, ANC 1.5, PLT 150"
    )
    await alice.press("✔ Record")
    await alice.press("Yes")
    await alice.press("No")
    assert "Pending: criterion 7.2 cannot be decided yet." in alice.last_text()
    assert "Missing: LVEF" in alice.last_text()
    listed = await alice.send("/resume")
    assert "S-106" in str(alice.last_message()["reply_markup"])
    assert listed == ["Your unfinished screenings:"]
    reply = await alice.press("Results arrived")
    assert "Left ventricular ejection fraction (LVEF, %)?" in reply[0]
    final = await alice.send("55")
    assert "Eligible: every criterion is met." in final[0]


async def test_correction_asks_a_reason(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-107")
    await alice.send("/back")
    await alice.press("Age: 45")
    reply = await alice.send("46")
    assert "Reason for changing Age from “45 years” to “46 years”?" in reply[0]
    await alice.press("Transcription error")
    s = screening(world, "S-107")
    ages = [a for a in world.repo.answers(s.id) if a.question_id == "age"]
    assert [(a.raw_text, a.status, a.change_reason) for a in ages] == [
        ("45", "superseded", "Transcription error"),
        ("46", "active", None),
    ]
    assert "Creatinine" in alice.last_text()  # back where the screening was

    # A typed reason for a button answer.
    await alice.send("/back")
    await alice.press("CD19 positive: yes")
    await alice.press("No")
    await alice.press("Other (type it)")
    await alice.send("flow report was for another sample")
    assert "criterion 5 is not met" in alice.last_text()
    events = [e for e in world.repo.audit_events("S-107") if e.kind == "answer_corrected"]
    assert events[-1].payload["reason"] == "flow report was for another sample"


async def test_stale_button_records_nothing(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-108")
    first_question = alice.last_message()
    await alice.press("Yes")
    before = len(world.repo.answers(screening(world, "S-108").id))
    reply = await alice.press("No", message=first_question)
    assert "That button is outdated; nothing was recorded." in reply[0]
    assert "subject willing and able to comply" in reply[0]
    assert len(world.repo.answers(screening(world, "S-108").id)) == before
    answered = {p["callback_query_id"] for p in world.api.methods("answerCallbackQuery")}
    assert len(answered) == alice.actions - 1  # every button press was answered


async def test_a_late_tap_telegram_no_longer_acknowledges_is_still_recorded(
    world: BotWorld,
) -> None:
    """After an outage, taps arrive with expired queries: answering them fails, harmlessly."""
    alice = world.chat(ALICE)
    await alice.send("/new S-115")
    first_question = alice.last_message()
    world.api.failures["answerCallbackQuery"] = (
        "Bad Request: query is too old and response timeout expired or query id is invalid"
    )
    reply = await alice.press("Yes")
    assert len(reply) == 1 and "Question 2 ·" in reply[0]  # no apology after it
    assert [e.kind for e in world.repo.audit_events("S-115")].count("answer_recorded") == 1
    # A late tap on a spent button: still told it is outdated, nothing recorded.
    reply = await alice.press("No", message=first_question)
    assert len(reply) == 1 and "That button is outdated; nothing was recorded." in reply[0]
    assert [e.kind for e in world.repo.audit_events("S-115")].count("answer_recorded") == 1
    # (the fixture fails the test if a handler raised)


async def test_duplicate_update_is_processed_once(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-109")
    await alice.press("Yes")
    assert await alice.redeliver() == []
    await alice.send("/new S-110")
    assert await alice.redeliver() == []
    s = screening(world, "S-109")
    assert len(world.repo.answers(s.id)) == 1 and s.row_version == 2


async def test_stranger_is_refused_and_nothing_created(world: BotWorld) -> None:
    stranger = world.chat(STRANGER, "Mallory")
    for text in ("/start", "/new S-666", "hello"):
        reply = await stranger.send(text)
        assert reply == [
            "Sorry, this bot is only for authorised research staff. Please ask your "
            "study administrator to register your Telegram account (id 4004)."
        ]
    assert world.repo.get_staff(STRANGER) is None
    assert world.repo.find_screening("S-666") is None


async def test_codes_that_look_like_names_are_refused(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    reply = await alice.send("/new John Smith")
    assert "Never use the patient's name" in reply[0]
    reply = await alice.send("S-111")  # the bot asked again
    assert "Screening S-111 started" in reply[0]


@asynccontextmanager
async def restarted(world: BotWorld, seed: Protocol, **kwargs: Any) -> AsyncIterator[BotWorld]:
    """A new bot process on the same database; the fixture's own is shut down meanwhile."""
    await world.app.shutdown()
    again = await start_world(world.engine, seed, **kwargs)
    try:
        yield again
        assert again.errors == []
    finally:
        await again.app.shutdown()
        await world.app.initialize()  # the fixture shuts it down


async def test_restart_resumes_at_the_same_question(world: BotWorld, seed: Protocol) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-112")
    async with restarted(world, seed) as again:
        alice2 = again.chat(ALICE)
        status = await alice2.send("/status")
        assert "Question 13 · up to 12 more" in status[0] and "Creatinine" in status[0]
        reply = await alice2.send("0.9x ULN")
        assert "LVEF" in reply[0]


def ages(world: BotWorld, code: str) -> list[tuple[str | None, str, str | None]]:
    """The age answers of a screening: what was typed, whether it stands, why it changed."""
    found = [a for a in world.repo.answers(screening(world, code).id) if a.question_id == "age"]
    return [(a.raw_text, a.status, a.change_reason) for a in found]


async def test_a_restart_keeps_a_value_waiting_for_confirmation(
    world: BotWorld, seed: Protocol
) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-114")
    for label in ("Yes", "Yes", "B-ALL, refractory"):
        await alice.press(label)
    await alice.send("2")
    for label in ("No", "No", "No suitable donor"):
        await alice.press(label)
    prompt = await alice.send("98")
    assert "Record it?" in prompt[0]
    spent = alice.last_message()
    async with restarted(world, seed) as again:
        reply = await again.chat(ALICE).press("✔ Record", message=spent)
        assert "Age: 98 years" in reply[0] and "criterion 3 is not met" in reply[0]
        assert ages(again, "S-114") == [("98", "active", None)]


async def test_a_restart_keeps_a_correction_waiting_for_its_reason(
    world: BotWorld, seed: Protocol
) -> None:
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-115")
    await alice.send("/back")
    await alice.press("Age: 45")
    await alice.send("46")
    await alice.press("Other (type it)")
    async with restarted(world, seed) as again:
        alice2 = again.chat(ALICE)
        await alice2.send("date of birth misread")
        assert ages(again, "S-115") == [
            ("45", "superseded", "date of birth misread"),
            ("46", "active", None),
        ]
        assert "Creatinine" in alice2.last_text()


async def test_a_restart_keeps_the_chosen_language_and_an_awaited_code(
    world: BotWorld, seed: Protocol
) -> None:
    alice = world.chat(ALICE)
    await alice.send("/language")
    await alice.press("中文")
    await alice.send("/new")
    async with restarted(world, seed) as again:
        reply = await again.chat(ALICE).send("S-116")
        assert "受试者是否自愿参加并已签署知情同意书？" in reply[0]
        assert screening(again, "S-116").created_by == ALICE


async def test_chinese(world: BotWorld) -> None:
    alice = world.chat(ALICE, lang="zh-hans")
    reply = await alice.send("/new S-113")
    assert "受试者是否自愿参加并已签署知情同意书？" in reply[0]
    assert alice.button("是") and alice.button("未知 / 待定")
    reply = await alice.press("否")
    assert "不符合入组条件：未满足标准 1。" in reply[0]
    await alice.send("/language")
    await alice.press("English")
    assert "Not eligible" in (await alice.send("/status"))[0]


async def test_admin_manages_staff_from_the_chat(world: BotWorld) -> None:
    admin, alice = world.chat(ADMIN, "Admin"), world.chat(ALICE)
    assert "needs the admin role" in (await alice.send("/staff list"))[0]
    # A superscript passes str.isdigit but not int(): the usage, not an error.
    assert (await admin.send("/staff add ² Li coordinator"))[0] == (await admin.send("/staff"))[0]
    reply = await admin.send("/staff add 5005 Nurse Li coordinator")
    assert reply == ["5005 Nurse Li: coordinator, active."]
    newcomer = world.chat(5005, "Li")
    assert "you are registered as coordinator" in (await newcomer.send("/start"))[0]
    await admin.send("/staff remove 5005")
    assert "only for authorised research staff" in (await newcomer.send("/start"))[0]


async def test_coordinator_cannot_open_another_persons_screening(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-114")
    other = world.chat(5006, "Bob")
    from storage.records import Role, Staff

    world.repo.save_staff(Staff(5006, "Bob", Role.COORDINATOR))
    # Bob replays Alice's button (a forwarded or guessed callback): refused, nothing recorded.
    reply = await other.press("Yes", message=alice.last_message())
    assert reply == []
    alerts = [p for p in world.api.methods("answerCallbackQuery") if p.get("show_alert")]
    assert "You may not open screening" in alerts[-1]["text"]
    assert world.repo.answers(screening(world, "S-114").id) == []


async def test_errors_are_apologised_with_a_reference(
    world: BotWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.chat(ALICE)
    await alice.send("/new S-115")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(world.service, "store", broken)
    reply = await alice.press("Yes")
    assert reply[0].startswith("Sorry, something went wrong (reference ")
    assert [type(e) for e in world.errors] == [RuntimeError]
    world.errors.clear()
    assert world.repo.answers(screening(world, "S-115").id) == []


async def test_command_menu_and_message_limits(world: BotWorld) -> None:
    await world.app.post_init(world.app)  # type: ignore[misc]
    menus = world.api.methods("setMyCommands")
    assert len(menus) == 2
    assert "new" in str(menus[0]["commands"])
    assert [len(m["commands"]) for m in menus] == [len(MENU), len(MENU)]
    assert "开始筛选" in str(menus[1]["commands"]) and menus[1]["language_code"] == "zh"
    alice = world.chat(ALICE)
    await up_to_labs(alice, "S-116")
    await alice.send("x" * 5000)
    assert all(len(m["text"]) <= 4096 for m in world.api.sent)
    assert all(
        len(b["callback_data"].encode()) <= 64
        for m in world.api.sent
        for row in m.get("reply_markup", {}).get("inline_keyboard", [])
        for b in row
    )


async def test_with_the_rate_limiter(tmp_path: object, seed: Protocol, world: BotWorld) -> None:
    limited = await start_world(world.engine, seed, rate_limit=True)
    try:
        alice = limited.chat(ALICE)
        reply = await alice.send("/new S-117")
        assert "Screening S-117 started" in reply[0]
        assert limited.errors == []
    finally:
        await limited.app.shutdown()


async def test_export_in_chat(world: BotWorld) -> None:
    import io

    from pypdf import PdfReader

    alice = world.chat(ALICE)
    await alice.send("/new S-118")
    await alice.press("No")
    await alice.send("/export")
    documents = world.api.methods("sendDocument")
    files = [d["_files"][0] for d in documents]
    assert [name for name, _ in files] == ["S-118.pdf", "S-118.json"]
    pdf = PdfReader(io.BytesIO(files[0][1]))
    assert "Screening transcript S-118" in pdf.pages[0].extract_text()
    assert b'"code": "S-118"' in files[1][1]

    # Another coordinator may not export Alice's screening.
    from storage.records import Role, Staff

    world.repo.save_staff(Staff(5007, "Bob", Role.COORDINATOR))
    bob = world.chat(5007, "Bob")
    assert await bob.send("/export S-118") == ["You may not open screening S-118."]
    assert len(world.api.methods("sendDocument")) == 2


async def test_messages_go_out_with_typed_methods_and_warn_of_nothing(
    world: BotWorld, seed: Protocol
) -> None:
    """With every warning an error, a screening's first tap sends the next question and
    removes the spent buttons through python-telegram-bot's typed methods, with no error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strict = await start_world(world.engine, seed)
        alice = strict.chat(ALICE)
        await alice.send("/new S-140")
        question = alice.last_message()
        assert question["reply_markup"]["inline_keyboard"]
        reply = await alice.press("Yes")
        assert "Question 2 ·" in reply[0]
        removed = strict.api.methods("editMessageReplyMarkup")
        assert [(int(p["chat_id"]), int(p["message_id"])) for p in removed] == [
            (ALICE, question["message_id"])
        ]
        assert "reply_markup" not in removed[0]  # an edit without a keyboard removes it
        await strict.app.shutdown()
    assert strict.errors == []


async def test_a_tap_on_a_message_telegram_no_longer_shows_is_recorded(world: BotWorld) -> None:
    """Its buttons cannot be removed (Telegram refuses the edit); the answer counts all the same."""
    alice = world.chat(ALICE)
    await alice.send("/new S-141")
    world.api.failures["editMessageReplyMarkup"] = "Bad Request: message can't be edited"
    reply = await alice.press("Yes", inaccessible=True)
    assert "Question 2 ·" in reply[0]
    assert [e.kind for e in world.repo.audit_events("S-141")].count("answer_recorded") == 1
    assert len(world.api.methods("editMessageReplyMarkup")) == 1
