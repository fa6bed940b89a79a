"""The bot as a real process (polling a fake Bot API on loopback), killed with SIGKILL at random
points during many screenings: every answer it acknowledged survives, nothing is recorded twice,
screenings resume at the right question and every audit chain verifies."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from flows import Protocol
from flows.schema import ChoiceQuestion, YesNoQuestion
from flows.showing import answer_text
from flows.values import value_to_json
from reports.chain import verify_entries
from storage.db import make_engine, upgrade
from storage.records import Role, Staff
from storage.sql import SqlRepository
from tests.bot_process import BotProcess, press_update, text_update
from tests.fake_bot_api_server import FakeBotAPIServer
from tests.flows_helpers import ELIGIBLE_WOMAN, parsed

CHATS = 6
KILL_PROBABILITY = 0.08
USERS = [70_000 + i for i in range(CHATS)]


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_answer(
    tmp_path: Path, seed: Protocol
) -> None:
    rnd = random.Random(20261125)
    db_url = f"sqlite:///{tmp_path / 'kill.sqlite3'}"
    engine = make_engine(db_url)
    upgrade(engine)
    repo = SqlRepository(engine)
    for user in USERS:
        repo.save_staff(Staff(user, f"U{user}", Role.COORDINATOR))
    server = FakeBotAPIServer()
    server.start()
    bot = BotProcess(tmp_path, server.base_url, db_url)
    bot.start()
    kills = updates = 0
    acknowledged: list[tuple[str, str, Any]] = []  # (code, question, value) the bot confirmed

    def deliver(user: int, update: dict[str, Any]) -> bool:
        """Push an update; maybe kill the bot meanwhile; True when the bot confirmed a
        recorded answer ("✔ …") in reply."""
        nonlocal kills, updates
        seen = len(server.messages(user))
        server.push(update)
        updates += 1
        if rnd.random() < KILL_PROBABILITY:
            time.sleep(rnd.uniform(0, 0.05))  # anywhere: before, during or after the write
            bot.kill()
            kills += 1
            bot.start()
        if server.wait_for_message(user, seen, timeout=6):
            # The confirmation ("✔ …") opens the bot's first reply to a recorded answer.
            return any(m["text"].startswith("✔") for m in server.messages(user)[seen:])
        bot.ensure_running()
        return False

    try:
        codes = {user: f"K-{user}" for user in USERS}
        done: set[int] = set()
        for user in USERS:
            deliver(user, text_update(user, f"/new {codes[user]}"))
        for _ in range(60 * CHATS):
            active = [u for u in USERS if u not in done]
            if not active:
                break
            user = rnd.choice(active)  # interleave the chats at random
            screening = repo.find_screening(codes[user])
            if screening is None:  # the /new was lost with a killed process: ask again
                deliver(user, text_update(user, f"/new {codes[user]}"))
                continue
            if not screening.unfinished:
                done.add(user)
                continue
            last = server.messages(user)[-1] if server.messages(user) else {}
            state = screening.state
            if state.at == "eligible":
                update = press_update(user, last, "✍ Sign")
                expected = None
            else:
                question = seed.questions_by_id[state.at]
                raw = ELIGIBLE_WOMAN[question.id]
                value = parsed(seed, question.id, raw).value
                expected = (codes[user], question.id, value)
                if isinstance(question, YesNoQuestion | ChoiceQuestion):
                    if isinstance(value, bool):
                        label = "Yes" if value else "No"
                    else:
                        label = answer_text(seed, question.id, value, "en")
                    update = press_update(user, last, label)
                else:
                    update = text_update(user, raw)
            if update is None or f"[{codes[user]}]" not in last.get("text", ""):
                # The screen for this question was never shown (its reply died with the
                # process): ask the bot where the screening stands, as a person would.
                deliver(user, text_update(user, "/status"))
                continue
            if deliver(user, update) and expected is not None:
                acknowledged.append(expected)
        assert done == set(USERS), "every screening was completed"
    finally:
        bot.stop()
        server.stop()

    # Every acknowledged answer is stored, once, and nothing was recorded twice.
    for code, qid, value in acknowledged:
        s = repo.find_screening(code)
        assert s is not None and s.state.answers[qid] == value
    for user in USERS:
        s = repo.find_screening(codes[user])
        assert s is not None and s.close_kind == "signed" and s.status == "eligible"
        history = repo.answers(s.id)
        assert [a.status for a in history].count("superseded") == 0
        assert len(history) == len({a.question_id for a in history}) == 25
        assert verify_entries(s.code, repo.audit_events(s.code)).ok
        assert all(value_to_json(a.value) for a in history)
    assert kills >= 10, f"only {kills} kills: raise KILL_PROBABILITY"
    print(
        f"\nkill -9 test: {kills} kills, {bot.starts} starts, {updates} updates, "
        f"{len(acknowledged)} acknowledged answers, 0 lost, 0 duplicated"
    )
