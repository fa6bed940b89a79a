"""PostgreSQL stopped and started again during a screening. It stops the server the other
tests use, so ``make test`` runs it alone, after them (marked ``stops_postgres``; named to come
last in a run without workers). Skipped where this process may not control the local cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from flows import Protocol
from storage.db import make_engine, upgrade
from storage.records import Role, Staff, StorageUnavailable
from storage.sql import SqlRepository
from tests.bot_fixtures import ALICE, start_world
from tests.conftest import postgres_url


def cluster() -> list[str]:
    """The command prefix that controls the local PostgreSQL cluster, or skip."""
    tool = shutil.which("pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if tool is None or not versions or os.geteuid() != 0:
        pytest.skip("needs root and pg_ctlcluster to stop and start the local PostgreSQL")
    return [tool, "--skip-systemctl-redirect", versions[-1], "main"]


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    engine = make_engine(url)
    try:
        while True:
            try:
                with engine.connect() as c:
                    c.exec_driver_sql("SELECT 1")
                return
            except OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.stops_postgres
async def test_postgres_stopped_and_started_during_a_screening(
    tmp_path: Path, seed: Protocol
) -> None:
    url = postgres_url()
    control = cluster()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    SqlRepository(engine).save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    world = await start_world(engine, seed)
    try:
        alice = world.chat(ALICE)
        await alice.send("/new P-301")
        question = alice.last_message()
        subprocess.run([*control, "stop"], check=True, capture_output=True)
        try:
            reply = await alice.press("Yes", message=question)
            assert "database cannot be reached right now, so nothing was recorded" in reply[0]
            assert world.errors and all(isinstance(e, StorageUnavailable) for e in world.errors)
            world.errors.clear()
        finally:
            subprocess.run([*control, "start"], check=True, capture_output=True)
            wait_until_up(url)
        # The same bot, not restarted, carries on: connections are re-established.
        retry = await alice.press("Yes", message=question)
        assert "subject willing and able to comply" in retry[0]
        assert world.errors == []
        s = world.repo.find_screening("P-301")
        assert s is not None and len(world.repo.answers(s.id)) == 1
    finally:
        await world.app.shutdown()
        engine.dispose()
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
