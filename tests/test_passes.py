"""Starting a pass over several trials (``bot.passes.begin_pass``): codes, redelivery, crashes."""

from __future__ import annotations

from typing import Any

import pytest

from bot.passes import begin_pass
from bot.results import AlreadyProcessed
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN
from flows import Catalog, Protocol
from flows.loader import BUNDLED_DIR, load_catalog
from flows.messages import Message
from storage.memory import InMemoryRepository
from storage.records import Screening

CATALOG = load_catalog([BUNDLED_DIR])
BOTH = CATALOG.current()


class CrashOnce(InMemoryRepository):
    """A repository whose process dies once, after the first trial of a pass is stored."""

    crashed = False

    def create_screening(self, code: str, protocol: Protocol, *args: Any, **kw: Any) -> Screening:
        if not self.crashed and self.find_screening(code.replace(protocol.id, BOTH[0].id)):
            self.crashed = True
            raise RuntimeError("killed")
        return super().create_screening(code, protocol, *args, **kw)


def test_a_redelivered_new_starts_what_a_crash_left_unstarted_and_says_nothing() -> None:
    repo = CrashOnce()
    service = ScreeningService(repo, CATALOG, DEFAULT_CODE_PATTERN)
    with pytest.raises(RuntimeError):
        begin_pass(service, "P-401", BOTH, actor=1, update_id=77)
    assert repo.find_screening("P-401/thiscart19a-bridge") is None
    again = begin_pass(service, "P-401", BOTH, actor=1, update_id=77)  # Telegram sends it again
    assert isinstance(again, AlreadyProcessed)
    bridge = repo.find_screening("P-401/thiscart19a-bridge")
    assert bridge is not None
    first = repo.audit_events(bridge.code)[0].payload
    assert first["pass"] == {"code": "P-401", "screenings": ["P-401/cd19-cart-ball-consolidation"]}
    # A redelivery of a pass that was wholly started adds nothing.
    assert isinstance(begin_pass(service, "P-401", BOTH, actor=1, update_id=77), AlreadyProcessed)
    assert len(repo.audit_events(bridge.code)) == 1


def test_codes_of_a_pass_are_its_own() -> None:
    repo = InMemoryRepository()
    service = ScreeningService(repo, CATALOG, DEFAULT_CODE_PATTERN)
    started = begin_pass(service, "P-402", BOTH, actor=1, update_id=1)
    assert isinstance(started, list)
    assert [s.code for s in started] == [
        "P-402/cd19-cart-ball-consolidation",
        "P-402/thiscart19a-bridge",
    ]
    assert all(s.pass_code == "P-402" for s in started)
    taken = begin_pass(service, "P-402", BOTH, actor=1, update_id=2)
    assert isinstance(taken, Message) and taken.key == "code_taken"
    alone = service.begin("P-402", BOTH[0], actor=1)
    assert isinstance(alone, Message) and alone.key == "code_taken"
    slash = begin_pass(service, "P-40/3", BOTH, actor=1)
    assert isinstance(slash, Message) and slash.key == "code_invalid"
    single = ScreeningService(repo, Catalog(BOTH[:1]), r"^[A-Z0-9/-]{3,32}$")
    assert isinstance(single.begin("P-40/4", BOTH[0], actor=1), Message)  # whatever the pattern
