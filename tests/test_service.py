from __future__ import annotations

import pytest

from bot.results import AlreadyProcessed, ConfirmFirst, Conflict, Reask, Recorded, Refused
from bot.service import ScreeningService
from bot.settings import DEFAULT_CODE_PATTERN
from flows import Catalog, Protocol
from flows.messages import Message
from storage.memory import InMemoryRepository
from storage.records import Role, Screening, Staff
from tests.conftest import Clock
from tests.flows_helpers import ELIGIBLE_WOMAN

ALICE = 7


@pytest.fixture
def service(seed: Protocol, clock: Clock) -> ScreeningService:
    return ScreeningService(InMemoryRepository(clock), Catalog((seed,)), DEFAULT_CODE_PATTERN)


def begin(service: ScreeningService, seed: Protocol, code: str = "S-100") -> Screening:
    created = service.begin(code, seed, actor=ALICE)
    assert isinstance(created, Screening)
    return created


@pytest.mark.parametrize("code", ["JOHN", "John Smith", "li-wei", "张伟", "x", ""])
def test_codes_that_could_be_names_are_refused(
    service: ScreeningService, seed: Protocol, code: str
) -> None:
    result = service.begin(code, seed, actor=ALICE)
    assert isinstance(result, Message) and result.key == "code_invalid"


def test_code_taken(service: ScreeningService, seed: Protocol) -> None:
    begin(service, seed)
    result = service.begin("S-100", seed, actor=ALICE)
    assert isinstance(result, Message) and result.key == "code_taken"


def test_typed_answers(service: ScreeningService, seed: Protocol) -> None:
    s = begin(service, seed)
    assert isinstance(service.answer_text(s, "perhaps", actor=ALICE), Reask)
    outcome = service.answer_text(s, "yes", actor=ALICE)
    assert isinstance(outcome, Recorded) and outcome.screening.state.at == "willing_to_comply"


def test_unusual_values_are_confirmed_first(service: ScreeningService, seed: Protocol) -> None:
    s = begin(service, seed)
    for qid in list(ELIGIBLE_WOMAN)[:7]:
        outcome = service.answer_text(s, ELIGIBLE_WOMAN[qid], actor=ALICE)
        assert isinstance(outcome, Recorded)
        s = outcome.screening
    assert s.state.at == "age"
    first = service.answer_text(s, "97", actor=ALICE)
    assert isinstance(first, ConfirmFirst)
    assert service.repo.get_screening(s.id) == s  # nothing recorded yet
    confirmed = service.answer_text(s, "97", actor=ALICE, confirmed=True)
    assert isinstance(confirmed, Recorded) and confirmed.screening.status == "ineligible"


def test_conflict_and_duplicate(service: ScreeningService, seed: Protocol) -> None:
    s = begin(service, seed)
    first = service.answer_text(s, "yes", actor=ALICE, update_id=1)
    assert isinstance(first, Recorded)
    assert isinstance(
        service.answer_text(first.screening, "yes", actor=ALICE, update_id=1), AlreadyProcessed
    )
    stale = service.answer_text(s, "no", actor=ALICE, update_id=2)
    assert isinstance(stale, Conflict) and stale.screening == first.screening


def test_close_rules(service: ScreeningService, seed: Protocol) -> None:
    s = begin(service, seed)
    assert isinstance(service.close(s, "signed", actor=ALICE), Refused)
    assert isinstance(service.close(s, "exclusion_confirmed", actor=ALICE), Refused)
    excluded = service.answer_text(s, "no", actor=ALICE)
    assert isinstance(excluded, Recorded) and excluded.screening.state.at == "excluded"
    assert isinstance(service.close(excluded.screening, "signed", actor=ALICE), Refused)
    closed = service.close(excluded.screening, "exclusion_confirmed", actor=ALICE)
    assert isinstance(closed, Screening) and not closed.unfinished
    again = service.close(closed, "cancelled", actor=ALICE, reason="x")
    assert isinstance(again, Refused) and again.message.key == "already_closed"


def test_who_may_open_a_screening(seed: Protocol) -> None:
    from bot.access import can_access

    repo = InMemoryRepository()
    mine = repo.create_screening(
        "A-1", seed, __import__("flows").start(seed), actor=1, site="North"
    )
    coordinator = Staff(1, "Ann", Role.COORDINATOR, site="North")
    assert can_access(coordinator, mine)
    assert not can_access(Staff(2, "Bo", Role.COORDINATOR, site="North"), mine)  # not hers
    assert can_access(Staff(3, "Cy", Role.INVESTIGATOR, site="North"), mine)
    assert not can_access(Staff(4, "Di", Role.INVESTIGATOR, site="South"), mine)  # other site
    assert can_access(Staff(5, "Ed", Role.INVESTIGATOR), mine)  # no site: all sites
    assert can_access(Staff(6, "Fa", Role.ADMIN, site="South"), mine)
    assert not can_access(Staff(1, "Ann", Role.COORDINATOR, active=False, site="North"), mine)
