from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings, load_settings
from storage.db import head_revision, make_engine

runner = CliRunner()


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return url


def test_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("PRESCREEN_ADMIN_IDS", "11, 12")
    settings = load_settings()
    assert settings.database_url == "postgresql://db/x" and not settings.is_sqlite
    assert settings.admin_ids == [11, 12]
    assert settings.bot_token is None


def test_db_upgrade_and_status(db_env: str) -> None:
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 1 and "no database at" in result.output
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0
    assert f"at revision {head_revision()}" in result.output
    result = runner.invoke(app, ["db", "status"])
    assert f"at {head_revision()}; newest: {head_revision()}" in result.output


def test_staff_commands(db_env: str) -> None:
    assert (
        runner.invoke(app, ["staff", "add", "42", "Dr Chen", "--role", "investigator"]).exit_code
        == 0
    )
    listed = runner.invoke(app, ["staff", "list"])
    assert "42\tDr Chen\tinvestigator\tactive" in listed.output
    assert runner.invoke(app, ["staff", "remove", "42"]).exit_code == 0
    assert "42\tDr Chen\tinvestigator\tremoved" in runner.invoke(app, ["staff", "list"]).output
    assert runner.invoke(app, ["staff", "remove", "43"]).exit_code == 1


def test_audit_verify(db_env: str) -> None:
    script = "/new S-500\n1\nyes\nyes\n1\nno\n/quit\n"  # trial 1 of the bundled two
    assert runner.invoke(app, ["console"], input=script).exit_code == 0
    ok = runner.invoke(app, ["audit", "verify", "S-500"])
    assert ok.exit_code == 0 and "S-500: OK, 4 events" in ok.output
    with make_engine(db_env).begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 99 WHERE seq = 2"))
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "S-500: BROKEN at event 2: event 2 (answer_recorded) was altered" in broken.output
    assert runner.invoke(app, ["audit", "verify", "NOPE-1"]).exit_code == 1


def test_run_without_a_token_says_how_to_get_one(
    db_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRESCREEN_BOT_TOKEN", raising=False)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "@BotFather" in result.output and "PRESCREEN_BOT_TOKEN" in result.output


def test_every_setting_is_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    for name in Settings.model_fields:
        variable = f"PRESCREEN_{name.upper()}"
        assert f"\n{variable}=" in example, variable
        assert variable in readme, variable
    # A copied .env.example, as is, gives the defaults (empty means unset).
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(example)
    assert load_settings() == Settings(_env_file=None)
