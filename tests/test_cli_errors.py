"""Common operator mistakes end in one clear line and a non-zero exit: no traceback, no token,
no file created."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

TOKEN = "123456:SECRET-TOKEN-VALUE"
UNREACHABLE = "postgresql+psycopg://nobody:pw@127.0.0.1:1/none?connect_timeout=2"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PRESCREEN_BOT_TOKEN", TOKEN)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    output = result.output
    assert "Traceback" not in output and TOKEN not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result.exit_code, output


@pytest.mark.parametrize(
    "command",
    [["db", "status"], ["db", "upgrade"], ["staff", "list"], ["audit", "verify"]],
    ids=lambda c: " ".join(c),
)
def test_an_unreachable_database_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", UNREACHABLE)
    code, output = run(*command)
    assert code == 2
    assert "cannot reach the database postgresql+psycopg://nobody:***@127.0.0.1:1/none" in output
    assert "pw@" not in output
    assert list(env.iterdir()) == []


def test_status_of_a_sqlite_file_in_a_missing_folder_creates_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", "sqlite:///no/such/folder/p.sqlite3")
    code, output = run("db", "status")
    assert code == 1 and "no database at" in output and "no/such/folder/p.sqlite3" in output
    assert list(env.iterdir()) == []


def test_verifying_an_empty_database_says_there_was_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    code, output = run("audit", "verify")
    assert code == 0 and "Nothing to verify" in output


def test_staff_add_refuses_an_empty_name(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    code, output = run("staff", "add", "42", "  ")
    assert code == 2 and "the name is empty" in output
    code, output = run("staff", "list")
    assert code == 0 and output.startswith("telegram_id\tname\trole\tstate\tsite")


def test_telegram_unreachable_is_one_line_naming_the_url(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    monkeypatch.setenv("PRESCREEN_BASE_URL", "http://127.0.0.1:1/bot")
    thresholds = gc.get_threshold()
    try:
        code, output = run("run")
    finally:  # serving tunes the collector for the process: undone for the other tests
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    assert code == 2
    assert output.startswith("error: cannot reach Telegram at http://127.0.0.1:1/bot")
    assert len(output.strip().splitlines()) == 1
