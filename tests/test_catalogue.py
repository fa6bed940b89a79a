"""One catalogue holds every word shown to people, complete in English and Chinese."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import get_args

import pytest

from flows.catalogue import CATALOGUE, tr
from flows.verdict import Outcome, Status
from storage.records import CloseKind

ROOT = Path(__file__).resolve().parents[1]
CALLS = re.compile(r"""\b(?:t|tr|word|msg)\(\s*["']([a-z][a-z0-9_]*)["']""")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_entry_is_complete_in_both_languages(key: str) -> None:
    entry = CATALOGUE[key]
    assert entry["en"].strip() and entry["zh"].strip()
    assert fields(entry["en"]) == fields(entry["zh"]), key


def test_every_key_the_code_uses_is_there() -> None:
    used: set[str] = set()
    for package in ("bot", "flows", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            used |= set(CALLS.findall(path.read_text(encoding="utf-8")))
    assert len(used) > 100
    assert used - set(CATALOGUE) == set()
    # Keys made from a value: every value has its entry.
    for family, values in (
        ("status", [s.value for s in Status]),
        ("outcome", [o.value for o in Outcome]),
        ("close", list(get_args(CloseKind))),
    ):
        for value in values:
            assert f"{family}_{value}" in CATALOGUE
    from bot.application import MENU

    assert {f"menu_{c}" for c in MENU} <= set(CATALOGUE)


def test_there_is_one_catalogue() -> None:
    """No module keeps wording of its own in a dictionary of languages."""
    pattern = re.compile(r"""\{\s*["']en["']\s*:""")
    holders = [
        path.relative_to(ROOT).as_posix()
        for package in ("bot", "flows", "reports", "storage")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    # flows/text.py reads a protocol's own wording ({en: …, zh: …} in its YAML); the catalogue
    # is kept in two parts, merged by flows/catalogue.py.
    assert sorted(holders) == ["flows/catalogue.py", "flows/catalogue_chat.py", "flows/text.py"]


def test_a_missing_translation_cannot_pass_silently() -> None:
    with pytest.raises(KeyError):
        tr("no_such_key", "en")


def test_no_key_is_in_both_parts_of_the_catalogue() -> None:
    # Merged into one mapping, a key in both parts would silently take the chat's wording.
    from flows import catalogue
    from flows.catalogue_chat import CHAT

    assert set(catalogue._SHOWN).isdisjoint(CHAT)
    assert len(CATALOGUE) == len(catalogue._SHOWN) + len(CHAT)
