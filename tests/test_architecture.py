"""Dependency arrows: flows imports no Telegram and no database code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_FLOWS = ("telegram", "sqlalchemy", "sqlmodel", "alembic", "psycopg", "storage", "bot")


def imported_modules(package: str) -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_flows_source_imports_no_io_layers() -> None:
    assert imported_modules("flows").isdisjoint(FORBIDDEN_IN_FLOWS)


def test_storage_does_not_import_the_bot() -> None:
    assert "bot" not in imported_modules("storage")
    assert "telegram" not in imported_modules("storage")


def test_importing_flows_loads_no_io_layer() -> None:
    code = (
        "import sys, flows, flows.diagram, flows.checks\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_IN_FLOWS!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == ""


def test_storage_holds_persistence_only() -> None:
    assert imported_modules("storage").isdisjoint({"bot", "telegram", "reports"})


def test_reports_use_storage_and_flows_but_not_the_bot() -> None:
    assert imported_modules("reports").isdisjoint({"bot", "telegram"})


def test_the_bot_speaks_to_storage_not_to_the_database_library() -> None:
    assert imported_modules("bot").isdisjoint({"sqlalchemy", "sqlmodel", "psycopg"})


def test_storage_stays_plain_within_its_budget() -> None:
    # The write path is one plain transaction through SQLModel (issue #45): storage/ without its
    # migrations stays within 2,000 lines, so a second way to write cannot creep back unseen.
    sources = [p for p in (ROOT / "storage").rglob("*.py") if "migrations" not in p.parts]
    assert sum(len(p.read_text().splitlines()) for p in sources) <= 2000
