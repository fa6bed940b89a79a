"""Two webhook processes on one PostgreSQL database receive interleaved updates for the same
screenings, some delivered to both at once: nothing lost, nothing duplicated, and every final
state equals a sequential run."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine

from flows import Protocol
from flows.schema import ChoiceQuestion, YesNoQuestion
from flows.showing import answer_text
from reports.chain import verify_entries
from storage.db import make_engine, upgrade
from storage.records import Role, Staff, state_to_json
from storage.sql import SqlRepository
from tests.bot_process import BotProcess, press_update, text_update
from tests.conftest import postgres_url
from tests.fake_bot_api_server import FakeBotAPIServer
from tests.flows_helpers import ELIGIBLE_WOMAN, parsed, run

CHATS = 6
SECRET = "two-webhooks-secret"
USERS = [80_000 + i for i in range(CHATS)]


def free_ports(count: int) -> list[int]:
    """Distinct free ports (all sockets are held until every port is chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def schema_url() -> Iterator[tuple[str, Engine]]:
    """A PostgreSQL URL whose connections use a schema of their own."""
    url = postgres_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    scoped = f"{url}?options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(scoped)
    try:
        yield scoped, engine
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def wait_listening(port: int, logs: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    output = "\n".join(p.read_text() for p in logs.glob("bot-*.log"))
    raise AssertionError(f"nothing listens on {port}; bot logs:\n{output[-3000:]}")


@pytest.mark.slow
def test_two_webhook_processes_share_one_database(
    tmp_path: Path, seed: Protocol, schema_url: tuple[str, Engine]
) -> None:
    url, engine = schema_url
    upgrade(engine)
    repo = SqlRepository(engine)
    for user in USERS:
        repo.save_staff(Staff(user, f"U{user}", Role.COORDINATOR))
    server = FakeBotAPIServer()
    server.start()
    ports = free_ports(2)
    bots = [
        BotProcess(
            tmp_path,
            server.base_url,
            url,
            "--webhook",
            PRESCREEN_WEBHOOK_PORT=str(port),
            PRESCREEN_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
            PRESCREEN_WEBHOOK_SECRET=SECRET,
        )
        for port in ports
    ]
    for bot in bots:
        bot.start()
    counter = iter(range(1, 10**9))
    lock = threading.Lock()
    stats = {"updates": 0, "to_both": 0}
    failures: list[str] = []

    def post(port: int, update: dict[str, Any]) -> None:
        response = httpx.post(
            f"http://127.0.0.1:{port}/telegram",
            content=json.dumps(update),
            headers={"content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
            timeout=30,
        )
        assert response.status_code == 200

    def deliver(user: int, update: dict[str, Any], rnd: random.Random) -> None:
        with lock:
            update = {**update, "update_id": next(counter)}
            stats["updates"] += 1
        seen = len(server.messages(user))
        if rnd.random() < 0.2:  # delivered to both processes at once, as a redelivery might
            with lock:
                stats["to_both"] += 1
            threads = [threading.Thread(target=post, args=(p, update)) for p in ports]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            post(rnd.choice(ports), update)
        assert server.wait_for_message(user, seen, timeout=30), "no reply"

    def screen(user: int, code: str, rnd: random.Random) -> None:
        try:
            deliver(user, text_update(user, f"/new {code}"), rnd)
            for qid in [q for q in ELIGIBLE_WOMAN]:
                last = server.messages(user)[-1]
                question = seed.questions_by_id[qid]
                raw = ELIGIBLE_WOMAN[qid]
                if isinstance(question, YesNoQuestion | ChoiceQuestion):
                    value = parsed(seed, qid, raw).value
                    label = (
                        ("Yes" if value else "No")
                        if isinstance(value, bool)
                        else answer_text(seed, qid, value, "en")
                    )
                    update = press_update(user, last, label)
                    assert update is not None, (qid, last["text"][:200])
                else:
                    update = text_update(user, raw)
                deliver(user, update, rnd)
            sign = press_update(user, server.messages(user)[-1], "✍ Sign")
            assert sign is not None
            deliver(user, sign, rnd)
        except AssertionError as exc:
            failures.append(f"{code}: {exc}")

    try:
        for port in ports:
            wait_listening(port, tmp_path)
        threads = [
            threading.Thread(target=screen, args=(u, f"W-{u}", random.Random(u))) for u in USERS
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for bot in bots:
            bot.stop()
        server.stop()
    assert failures == []
    sequential, _, _ = run(seed, ELIGIBLE_WOMAN)
    for user in USERS:
        s = repo.find_screening(f"W-{user}")
        assert s is not None and s.close_kind == "signed" and s.status == "eligible"
        assert state_to_json(s.state) == state_to_json(sequential)
        history = repo.answers(s.id)
        assert len(history) == 25 and all(a.status == "active" for a in history)
        assert verify_entries(s.code, repo.audit_events(s.code)).ok
        texts = [m["text"] for m in server.messages(user)]
        assert not any("changed on another device" in t for t in texts)
    assert stats["to_both"] > 10
    print(
        f"\ntwo webhooks: {stats['updates']} updates, {stats['to_both']} delivered to both "
        "processes, 0 lost, 0 duplicated"
    )
