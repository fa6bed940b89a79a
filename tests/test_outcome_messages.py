"""Outcome messages never contradict the verdict or the answers (every bundled protocol).

"Missing:" lists exactly the questions still to be answered for this patient, and "Results
arrived" asks exactly those; a number shown beside a limit compares with it as the engine
compared it; a screening that needs a review and waits for a result says so as one state.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import (
    UNKNOWN,
    Answer,
    AnswerValue,
    CompletePending,
    LabResult,
    Protocol,
    ScreeningState,
    current_question,
    load_protocol,
    parse_answer,
    start,
    step,
    verdict_of,
)
from flows.expressions import comparisons
from flows.loader import BUNDLED_DIR
from flows.render import outcome_text, question_label
from flows.rules import truth
from flows.schema import LabQuestion, Question
from flows.showing import answer_text
from flows.units import ANALYTES
from flows.values import fmt_near
from flows.verdict import Outcome
from storage.memory import InMemoryRepository
from tests.bot_fixtures import ALICE, BotWorld
from tests.flows_helpers import ELIGIBLE_WOMAN
from tests.test_console import session
from tests.test_properties import values_for

PROTOCOLS = [load_protocol(path) for path in sorted(BUNDLED_DIR.glob("*.yaml"))]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_OPS = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def eligible_values(protocol: Protocol) -> dict[str, AnswerValue]:
    """An eligible chart's values, for the protocol's questions it has (the seed trial's)."""
    found: dict[str, AnswerValue] = {}
    for qid, text in ELIGIBLE_WOMAN.items():
        question = protocol.questions_by_id.get(qid)
        parsed = parse_answer(question, text) if question else None
        if parsed is not None and hasattr(parsed, "value"):
            found[qid] = parsed.value
    return found


def near_limits(protocol: Protocol, question: Question) -> st.SearchStrategy[AnswerValue]:
    """Lab results a hair's breadth from a limit they are compared with, or on it."""
    limits = protocol.limits.get((question.id, "uln"))
    if not isinstance(question, LabQuestion) or not limits:
        return values_for(question)
    unit = ANALYTES[question.analyte].canonical
    deltas = [Decimal(0), *(Decimal(sign) * Decimal(10) ** -k for k in (3, 4) for sign in (1, -1))]
    return st.builds(
        lambda uln, limit, delta: LabResult(question.analyte, uln * (limit + delta), unit, uln),
        st.decimals(min_value=1, max_value=500, places=1),
        st.sampled_from(limits),
        st.sampled_from(deltas),
    )


def answer_sets(protocol: Protocol) -> st.SearchStrategy[dict[str, AnswerValue]]:
    """Charts mostly eligible, with random, unknown and near-limit answers mixed in, so that
    generated screenings reach every outcome rather than stopping at the first question."""
    eligible = eligible_values(protocol)
    per_question = {}
    for q in protocol.questions:
        choices = [values_for(q), st.just(UNKNOWN), near_limits(protocol, q)]
        if q.id in eligible:
            choices += [st.just(eligible[q.id])] * 4
        per_question[q.id] = st.one_of(*choices)
    return st.fixed_dictionaries(per_question)


def finish(protocol: Protocol, answers: dict[str, AnswerValue]) -> ScreeningState:
    state = start(protocol)
    while not state.finished:
        question = current_question(protocol, state)
        assert question is not None
        state = step(protocol, state, Answer(question.id, answers[question.id])).state
    return state


def still_to_answer(protocol: Protocol, state: ScreeningState) -> set[str]:
    """Independently of the renderer: questions asked of this patient, answered "unknown",
    that a criterion not yet decided reads."""
    verdict = verdict_of(protocol, state)
    undecided = {cv.criterion_id for cv in verdict.criteria if cv.outcome is Outcome.UNKNOWN}
    read = {
        q
        for c in protocol.criteria
        if c.id in undecided
        for name in c.questions
        for q in protocol.answers_read(name)  # a derived value: the answers it is made of
    }
    return {
        q.id
        for q in protocol.questions
        if truth(q.relevant_if, state.answers) is not False
        and state.answers.get(q.id) == UNKNOWN
        and q.id in read
    }


def listed_missing(protocol: Protocol, text: str) -> set[str]:
    by_label = {question_label(protocol, q.id, "en"): q.id for q in protocol.questions}
    listed: set[str] = set()
    for line in re.findall(r"Missing: (.*)", text):
        listed |= {by_label[label] for label in line.split(", ")}
    return listed


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_missing_is_what_is_still_to_be_answered(protocol: Protocol) -> None:
    @SETTINGS
    @given(answer_sets(protocol))
    def check(answers: dict[str, AnswerValue]) -> None:
        state = finish(protocol, answers)
        text = outcome_text(protocol, state, verdict_of(protocol, state), "en")
        expected = still_to_answer(protocol, state) if state.at != "excluded" else set()
        assert listed_missing(protocol, text) == expected
        if state.at != "pending":
            return
        # "Results arrived" asks exactly those, each once.
        asked: list[str] = []
        result = step(protocol, state, CompletePending())
        while result.rejected is None and not result.state.finished:
            qid = result.state.at
            asked.append(qid)
            result = step(protocol, result.state, Answer(qid, UNKNOWN))
        assert sorted(asked) == sorted(expected)

    check()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_numbers_shown_beside_limits_compare_as_the_engine_did(protocol: Protocol) -> None:
    @SETTINGS
    @given(answer_sets(protocol))
    def check(answers: dict[str, AnswerValue]) -> None:
        for criterion in protocol.criteria:
            if criterion.rule is None:  # the investigator's judgement
                continue
            for compare in comparisons(criterion.rule):
                value = answers.get(compare.q)
                if compare.operator not in _OPS or not isinstance(value, LabResult):
                    continue
                exact = value.ratio if compare.of == "uln" else value.value
                if exact is None:
                    continue
                shown = answer_text(protocol, compare.q, value, "en")
                pattern = r"([\d.]+)× ULN" if compare.of == "uln" else r"^([\d.]+)"
                number = Decimal(re.findall(pattern, shown)[0])
                limit = compare.operand
                assert _OPS[compare.operator](number, limit) == _OPS[compare.operator](
                    exact, limit
                ), (shown, compare.operator, limit)

    check()


@settings(max_examples=500, deadline=None)
@given(
    st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
    st.integers(0, 3),
)
def test_rounding_never_crosses_a_limit(value: Decimal, limit: Decimal, places: int) -> None:
    shown = Decimal(fmt_near(value, [limit], places))
    assert (shown > limit) == (value > limit)
    assert (shown < limit) == (value < limit)


def test_echo_keeps_a_ratio_on_its_side_of_the_limit(seed: Protocol) -> None:
    creatinine = seed.questions_by_id["creatinine"]
    limits = seed.limits[("creatinine", "uln")]
    # 2.4012 / 1.2 = 2.001: "2× ULN" would read as met beside "required ≤ 2× ULN".
    echo = parse_answer(creatinine, "2.4012 mg/dL ULN 1.2", limits)
    assert "(2.001× ULN)" in str(echo.echo.params)  # type: ignore[union-attr]
    alt = parse_answer(seed.questions_by_id["alt"], "121 U/L ULN 40", seed.limits[("alt", "uln")])
    assert "(3.03× ULN)" in str(alt.echo.params)  # type: ignore[union-attr]  # half up


PREGNANCY_PENDING = {**ELIGIBLE_WOMAN, "pregnancy_test": "unknown"}


async def drive(world: BotWorld, texts: dict[str, str], stop_at: str | None = None) -> list[str]:
    """Answer the seed trial question by question, typing what ``texts`` holds for each.

    Stops at the outcome, or at question ``stop_at`` before answering it.
    """
    alice = world.chat(ALICE)
    await alice.send("/new M-101")
    seed = world.service.catalog.current()[0]
    replies: list[str] = []
    for _ in range(len(seed.questions) + 1):
        s = world.repo.find_screening("M-101")
        assert s is not None
        question = current_question(seed, s.state)
        if question is None or question.id == stop_at:
            return replies
        replies = await alice.send(texts[question.id])
        if "Record it?" in alice.last_text():
            replies = await alice.press("✔ Record")
    raise AssertionError(f"the screening did not finish: {alice.last_text()}")


async def test_missing_names_only_questions_asked_of_this_patient(world: BotWorld) -> None:
    replies = await drive(world, PREGNANCY_PENDING)
    assert "Missing: Serum pregnancy test" in replies[-1]
    assert "Reproductive potential" not in replies[-1]
    alice = world.chat(ALICE)
    again = await alice.press("Results arrived")
    assert "pregnancy test" in again[-1].lower()


async def test_a_ratio_over_the_limit_is_not_shown_at_it(world: BotWorld) -> None:
    texts = {**ELIGIBLE_WOMAN, "creatinine": "2.4012 mg/dL ULN 1.2"}
    replies = await drive(world, texts)
    assert "Creatinine: 212.314104 µmol/L (2.001× ULN); required ≤ 2× ULN" in replies[-1]


REVIEW_AND_PENDING = {**ELIGIBLE_WOMAN, "lvef": "unknown", "hemoglobin": "70"}


async def test_review_and_pending_read_as_one_state(world: BotWorld) -> None:
    replies = await drive(world, REVIEW_AND_PENDING)
    text = replies[-1]
    assert "Waiting for the investigator's decision, then for a result:" in text
    assert "Result awaited for criterion 7.2." in text
    assert "Pending:" not in text
    assert "Next, in either order: the investigator decides" in text


def test_the_console_says_the_same(tmp_path: Path, seed: Protocol) -> None:
    del tmp_path
    pending = session(InMemoryRepository(), seed, ["/new M-102", *PREGNANCY_PENDING.values()])
    shown = "\n".join(pending)
    assert "Missing: Serum pregnancy test" in shown and "Reproductive potential" not in shown
    both = session(InMemoryRepository(), seed, ["/new M-103", *REVIEW_AND_PENDING.values()])
    assert "Waiting for the investigator's decision, then for a result:" in "\n".join(both)
    over = {**ELIGIBLE_WOMAN, "creatinine": "2.4012 mg/dL ULN 1.2"}
    excluded = session(InMemoryRepository(), seed, ["/new M-104", *over.values()])
    assert "(2.001× ULN); required ≤ 2× ULN" in "\n".join(excluded)
