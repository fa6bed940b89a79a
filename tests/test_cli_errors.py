"""Common operator mistakes end in one clear line and a non-zero exit: no traceback, no token,
no file created."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    output = result.output
    assert "Traceback" not in output and TOKEN not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result.exit_code, output


@pytest.mark.parametrize(
    "command",
    [
        ["db", "status"],
        ["db", "upgrade"],
        ["staff", "list"],
        ["staff", "add", "42", "Dr Chen"],
        ["audit", "verify"],
        ["export", "t.zip"],
        ["report", "--out", "log.csv"],
        ["console"],
    ],
    ids=lambda c: " ".join(c),
)
def test_an_unreachable_database_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", UNREACHABLE)
    code, output = run(*command)
    assert code == 2
    assert "cannot reach the database postgresql+psycopg://nobody:***@127.0.0.1:1/none" in output
    assert "pw@" not in output and len(output.strip().splitlines()) == 1
    assert list(env.iterdir()) == []


def test_status_of_a_sqlite_file_in_a_missing_folder_creates_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", "sqlite:///no/such/folder/p.sqlite3")
    code, output = run("db", "status")
    assert code == 1 and "no database at" in output and "no/such/folder/p.sqlite3" in output
    assert list(env.iterdir()) == []


def test_verifying_an_empty_or_unknown_database_says_there_was_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'typo.sqlite3'}")
    code, output = run("audit", "verify")
    assert code == 1 and output.startswith("error: Nothing to verify: no database at")
    assert list(env.iterdir()) == []
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    assert run("db", "upgrade")[0] == 0
    code, output = run("audit", "verify")
    assert code == 0 and "Nothing to verify: the database holds no screenings" in output
    code, output = run("audit", "verify", "S-404")
    assert code == 1 and "Nothing to verify: no screening with the code S-404" in output


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PRESCREEN_ADMIN_IDS", "12,abc", "'abc' is not a Telegram user id"),
        ("PRESCREEN_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("PRESCREEN_CODE_PATTERN", "^[A-Z", "not a valid regular expression"),
        ("PRESCREEN_LOG_LEVEL", "LOUD", "unknown log level 'LOUD'; use one of DEBUG, INFO"),
        ("PRESCREEN_PROTOCOLS_DIR", "/no/such/folder", "/no/such/folder is not a folder"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["db", "status"], ["staff", "list"]], ids=" ".join)
def test_bad_settings_are_named_at_start_up(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    says: str,
    command: list[str],
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    monkeypatch.setenv(variable, value)
    code, output = run(*command)
    assert code == 2
    assert output == f"error: {variable}: {says}" + output.split(says, 1)[1]
    assert len(output.strip().splitlines()) == 1
    assert list(env.iterdir()) == []


def test_the_default_database_does_not_depend_on_the_folder(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRESCREEN_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = Path(os.environ["XDG_DATA_HOME"]) / "prescreen" / "prescreen.sqlite3"
    code, output = run("db", "status")
    assert code == 1 and f"no database at {data}" in output
    assert run("db", "upgrade")[0] == 0
    elsewhere = env / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, output = run("db", "status")
    assert code == 0 and output.startswith(f"sqlite:///{data}: at ")
    assert list(elsewhere.iterdir()) == [] and data.exists()


@pytest.fixture
def screened(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database holding one screening, S-500, excluded at the second question."""
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'db' / 'p.sqlite3'}")
    assert run("console", input="/new S-500\n1\nyes\nno\n/quit\n")[0] == 0  # the seed trial
    out = env / "out"
    out.mkdir()
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--formats", "pdf,docx"], "unknown format docx; choose from pdf, csv, json"),
        (["--status", "done"], "unknown status 'done'; choose from in_progress, ineligible,"),
        (["--code", "S-404"], "no screening with the code S-404; nothing was written"),
        (["--status", "eligible"], "no screening matches; nothing was written"),
    ],
)
def test_export_mistakes_write_nothing(screened: Path, args: list[str], says: str) -> None:
    code, output = run("export", str(screened / "t.zip"), *args)
    assert code in (1, 2) and output.startswith(f"error: {says}"), output
    assert _files(screened) == []


def test_export_formats_and_statuses_are_case_insensitive(screened: Path) -> None:
    code, output = run(
        "export", str(screened / "t.zip"), "--formats", "CSV, Json", "--status", "Ineligible"
    )
    assert code == 0 and "1 screening(s) exported" in output, output
    assert _files(screened) == ["t.zip"]


def test_export_to_a_missing_folder_or_a_folder(screened: Path) -> None:
    code, output = run("export", str(screened / "nope" / "t.zip"))
    assert code == 2 and f"the folder {screened / 'nope'} does not exist" in output
    code, output = run("export", str(screened))
    assert code == 2 and f"{screened} is a folder; give a file name" in output
    assert _files(screened) == []


def test_report_writes_to_the_data_folder_or_the_given_path(screened: Path, env: Path) -> None:
    before = _files(env)
    code, output = run("report")
    folder = Path(os.environ["XDG_DATA_HOME"]) / "prescreen" / "reports"
    assert code == 0 and f"wrote {folder / 'screening-log.csv'}" in output
    assert _files(folder) == [
        "screening-log-criteria.csv",
        "screening-log-several-trials.csv",
        "screening-log.csv",
    ]
    assert _files(env) == before  # nothing in the folder it was run from
    code, _ = run("report", "--out", str(screened / "log.csv"))
    assert code == 0
    assert _files(screened) == ["log-criteria.csv", "log-several-trials.csv", "log.csv"]
    code, output = run("report", "--out", str(screened / "missing" / "log.csv"))
    assert code == 2 and "does not exist" in output
    code, output = run("report", "--period", "fortnight")
    assert code == 2 and "unknown period 'fortnight'" in output


def test_a_protocol_that_is_not_utf8_is_named(env: Path) -> None:
    bad = env / "latin1.yaml"
    bad.write_bytes("id: x\ntitle: café\n".encode("latin-1"))
    code, output = run("protocol", "check", str(bad))
    assert code == 1
    assert output.strip() == (
        f"{bad}: error: (file): not UTF-8 text: byte 0xe9 at offset 16 cannot be decoded; "
        "save the file as UTF-8"
    )


def test_a_wrong_operator_is_named_with_its_criterion_and_line(env: Path) -> None:
    seed = (
        Path(__file__).resolve().parents[1] / "flows/protocols/cd19_cart_ball_consolidation_v1.yaml"
    )
    text = seed.read_text(encoding="utf-8")
    line = next(
        i for i, row in enumerate(text.splitlines(), 1) if "{q: marrow_blasts, lt: 5}" in row
    )
    bad = env / "bad.yaml"
    bad.write_text(text.replace("{q: marrow_blasts, lt: 5}", "{q: marrow_blasts, lte: 5}"))
    code, output = run("protocol", "check", str(bad))
    assert code == 1
    assert (
        f"criterion 'I2', rule[1].lte (line {line}): unknown operator 'lte'; use one of eq, ne"
        in output
    )


def test_help_is_plain_and_describes_every_option() -> None:
    from typer.main import get_command

    root = get_command(app)
    commands: list[tuple[str, Any]] = []

    def walk(prefix: str, group: object) -> None:
        for name, cmd in getattr(group, "commands", {}).items():
            if getattr(cmd, "commands", None):
                walk(f"{prefix} {name}", cmd)
            else:
                commands.append((f"{prefix} {name}".strip(), cmd))

    walk("", root)
    assert len(commands) >= 12
    for name, cmd in commands:
        code, output = run(*name.split(), "--help")
        assert code == 0
        for wrong in ("<bool>", "{", " .", "  ,"):
            assert wrong not in output, (name, wrong, output)
        for param in cmd.params:
            assert getattr(param, "help", None), (name, param.name)


def test_staff_add_refuses_an_empty_name(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    code, output = run("staff", "add", "42", "  ")
    assert code == 2 and "the name is empty" in output
    code, output = run("staff", "list")
    assert code == 1 and "no database at" in output  # a read creates no database
    assert list(env.iterdir()) == []
    assert run("staff", "add", "42", "Dr Chen")[0] == 0
    code, output = run("staff", "list")
    assert code == 0 and output.startswith("telegram_id\tname\trole\tstate\tsite")


def test_telegram_unreachable_is_one_line_naming_the_url(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    monkeypatch.setenv("PRESCREEN_BASE_URL", "http://127.0.0.1:1/bot")  # connection refused
    code, output = run("run")
    assert code == 2
    assert output.startswith("error: cannot reach Telegram at http://127.0.0.1:1/bot")
    assert len(output.strip().splitlines()) == 1
    assert list(env.iterdir()) == []  # asked before the database is created


@contextmanager
def loopback_telegram(status: int, body: bytes) -> Iterator[str]:
    """A Bot API server on the loopback answering every call with ``status`` and ``body``;
    yields its base URL."""

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/bot"
    finally:
        server.shutdown()
        server.server_close()


GET_ME = (
    b'{"ok": true, "result": {"id": 1, "is_bot": true, "first_name": "Prescreen", '
    b'"username": "prescreen_bot"}}'
)
UNAUTHORIZED = b'{"ok": false, "error_code": 401, "description": "Unauthorized"}'


def test_run_with_the_database_unreachable_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", UNREACHABLE)
    with loopback_telegram(200, GET_ME) as base_url:
        monkeypatch.setenv("PRESCREEN_BASE_URL", base_url)
        code, output = run("run")
    assert code == 2
    assert output.startswith("error: cannot reach the database postgresql+psycopg://nobody:***@")
    assert len(output.strip().splitlines()) == 1 and "pw@" not in output
    assert list(env.iterdir()) == []


def test_a_rejected_token_is_one_line_without_the_token(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{env / 'p.sqlite3'}")
    with loopback_telegram(401, UNAUTHORIZED) as base_url:
        monkeypatch.setenv("PRESCREEN_BASE_URL", base_url)
        code, output = run("run")
    assert code == 2
    assert output.startswith("error: Telegram rejected the bot token (PRESCREEN_BOT_TOKEN)")
    assert len(output.strip().splitlines()) == 1
    assert list(env.iterdir()) == []
