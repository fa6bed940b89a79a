"""Pending results: /pending, reminders that survive a restart and fire once, and the
investigator's review taken from the notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows import Protocol
from tests.bot_fixtures import ALICE, CHEN, BotWorld
from tests.telegram_fake import Chat
from tests.test_bot import restarted, to_review, up_to_labs

WITH_LVEF_UNKNOWN = (
    "Cr 0.8x ULN, LVEF unknown, SpO2 97, Bili 0.5x ULN, ALT 0.5x ULN, "
    "AST 0.5x ULN, Hb 100, ANC 1.5, PLT 150"
)


async def to_pending(alice: Chat, code: str) -> None:
    await up_to_labs(alice, code)
    await alice.send(WITH_LVEF_UNKNOWN)
    await alice.press("✔ Record")
    await alice.press("Yes")
    await alice.press("No")
    assert "Pending: criterion 7.2 cannot be decided yet." in alice.last_text()


async def test_pending_lists_my_screenings_waiting_for_a_result(world: BotWorld) -> None:
    alice = world.chat(ALICE)
    assert (await alice.send("/pending")) == ["None of your screenings is waiting for a result."]
    await to_pending(alice, "W-101")
    await to_pending(alice, "W-102")
    listed = await alice.send("/pending")
    assert listed == ["Your screenings waiting for a result, the longest waiting first:"]
    labels = [row[0]["text"] for row in alice.last_message()["reply_markup"]["inline_keyboard"]]
    assert [label.split(" · ")[:2] for label in labels] == [["W-101", "LVEF"], ["W-102", "LVEF"]]
    opened = await alice.press("W-101")
    assert "[W-101] Pending" in opened[0] and alice.button("Results arrived")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def run_reminders(world: BotWorld) -> None:
    assert world.app.job_queue is not None
    [job] = [j for j in world.app.job_queue.jobs() if j.name == "reminders"]
    await job.run(world.app)


async def test_a_reminder_survives_a_restart_and_fires_once(
    world: BotWorld, seed: Protocol
) -> None:
    clock = Clock()
    async with restarted(world, seed, clock=clock) as first:
        alice = first.chat(ALICE)
        await to_pending(alice, "W-103")
        set_ = await alice.press("⏰ Tomorrow")
        assert set_ == ["I will remind you of screening W-103 on 2026-12-08 09:00 UTC."]
        async with restarted(first, seed, clock=clock) as again:  # a restart
            alice = again.chat(ALICE)
            sent = len(again.api.sent)
            await run_reminders(again)
            assert len(again.api.sent) == sent  # not due yet
            clock.now += timedelta(days=1, minutes=1)
            await run_reminders(again)
            [reminder] = again.api.sent[sent:]
            assert reminder["chat"]["id"] == ALICE
            assert reminder["text"] == (
                "⏰ Screening W-103 is waiting for: LVEF. Have the results arrived?"
            )
            await run_reminders(again)
            assert len(again.api.sent) == sent + 1  # once
            opened = await alice.press("Open W-103")
            assert "Results arrived" in str(alice.last_message()["reply_markup"]) and opened


async def test_the_investigator_decides_from_the_notification(world: BotWorld) -> None:
    alice, chen = world.chat(ALICE), world.chat(CHEN, "Chen")
    await to_review(alice, "W-104")
    notice = chen.last_text()
    assert "Screening W-104 needs your decision." in notice
    assert "Hemoglobin: 70 g/L; required ≥ 80 g/L" in notice
    assert "Investigators notified: Dr Chen (" in alice.last_text()
    asked = await chen.press("Reject 8.2")
    assert asked[0].startswith("Reason for your decision on criterion 8.2 (rejected)")
    await chen.send("Counts too low to collect cells")
    assert "Dr Chen decided on screening W-104: criterion 8.2 rejected" in alice.last_text()
    s = world.repo.find_screening("W-104")
    assert s is not None and s.status == "ineligible"
    assert [n.kind for n in world.repo.notices(s.id)] == ["review"]
