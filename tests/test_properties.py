"""Property tests of the engine with hypothesis."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import (
    UNKNOWN,
    Answer,
    AnswerValue,
    GoBack,
    Invalid,
    LabResult,
    Parsed,
    Protocol,
    Quantity,
    ScreeningState,
    current_question,
    format_value,
    parse_answer,
    start,
    step,
    verdict_of,
)
from flows.rules import evaluate, truth
from flows.schema import ChoiceQuestion, LabQuestion, NumberQuestion, Question
from flows.units import ANALYTES
from flows.verdict import Outcome, _judge, judge
from tests.conftest import SEED_FILE

SEED: Protocol = __import__("flows").load_protocol(SEED_FILE)
QUICK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decimals(low: Decimal | None, high: Decimal | None) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=low if low is not None else Decimal(0),
        max_value=high if high is not None else Decimal(10_000),
        places=3,
        allow_nan=False,
        allow_infinity=False,
    )


def values_for(question: Question) -> st.SearchStrategy[AnswerValue]:
    """Plausible answers, weighted towards the protocol's thresholds."""
    known: st.SearchStrategy[AnswerValue]
    match question:
        case ChoiceQuestion():
            known = st.sampled_from([o.id for o in question.options])
        case NumberQuestion():
            b = question.bounds
            known = st.builds(
                Quantity,
                decimals(
                    b.soft_min if b.soft_min is not None else b.min,
                    b.soft_max if b.soft_max is not None else b.max,
                ),
                st.just(question.unit),
            )
        case LabQuestion():
            a = ANALYTES[question.analyte]
            b = question.bounds or a.bounds
            value = decimals(b.soft_min if b.soft_min is not None else b.min, b.soft_max)
            if question.uln:
                known = st.one_of(
                    st.builds(
                        LabResult,
                        st.just(a.key),
                        value,
                        st.just(a.canonical),
                        decimals(Decimal(1), Decimal(500)),
                    ),
                    st.builds(
                        LabResult,
                        st.just(a.key),
                        st.none(),
                        st.none(),
                        st.none(),
                        decimals(Decimal(0), Decimal(5)),
                    ),
                )
            else:
                known = st.builds(LabResult, st.just(a.key), value, st.just(a.canonical))
        case _:
            known = st.booleans()
    return st.one_of(known, known, known, st.just(UNKNOWN))


answer_sets = st.fixed_dictionaries({q.id: values_for(q) for q in SEED.questions})


@QUICK
@given(st.sampled_from(SEED.questions).flatmap(lambda q: st.tuples(st.just(q), values_for(q))))
def test_parse_of_format_round_trips(pair: tuple[Question, AnswerValue]) -> None:
    question, value = pair
    result = parse_answer(question, format_value(value))
    if isinstance(result, Invalid):  # only values outside the plausible range may be refused
        assert result.hint.key in {"impossible", "impossible_hint_unit"}
        return
    assert result.value == value


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEED.questions), st.text(max_size=200))
def test_random_text_never_raises(question: Question, text: str) -> None:
    result = parse_answer(question, text)
    assert isinstance(result, Parsed | Invalid)


def finish(state: ScreeningState, answers: dict[str, AnswerValue]) -> ScreeningState:
    while not state.finished:
        question = current_question(SEED, state)
        assert question is not None
        state = step(SEED, state, Answer(question.id, answers[question.id])).state
    return state


@QUICK
@given(answer_sets, answer_sets, st.randoms(use_true_random=False))
def test_verdict_does_not_depend_on_the_order_of_answering(
    first: dict[str, AnswerValue], final: dict[str, AnswerValue], rnd: object
) -> None:
    """Answering ``first`` then correcting towards ``final`` in any order = answering ``final``."""
    direct = finish(start(SEED), final)
    state = finish(start(SEED), first)
    order = list(final)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    for qid in order:
        if qid in state.answers and state.answers[qid] != final[qid]:
            state = step(SEED, state, GoBack(qid)).state
            state = step(SEED, state, Answer(qid, final[qid])).state
            state = finish(state, final)
    expected, got = verdict_of(SEED, direct), verdict_of(SEED, state)
    assert got.status == expected.status
    if direct.at != "excluded":  # early stop leaves later criteria unknown in the direct run
        assert [cv.outcome for cv in got.criteria] == [cv.outcome for cv in expected.criteria]
        assert state.at == direct.at


partial_answer_sets = st.fixed_dictionaries(
    {}, optional={q.id: values_for(q) for q in SEED.questions}
)


@QUICK
@given(partial_answer_sets)
def test_the_fast_truth_agrees_with_the_explained_evaluation(
    answers: dict[str, AnswerValue],
) -> None:
    """Deciding (compiled, short-circuiting) and explaining (every check) never disagree."""
    expressions = [c.rule for c in SEED.criteria if c.rule is not None]
    expressions += [c.applies_if for c in SEED.criteria if c.applies_if is not None]
    expressions += [q.relevant_if for q in SEED.questions if q.relevant_if is not None]
    for expr in expressions:
        assert truth(expr, answers) == evaluate(expr, answers)[0]
    for cv in verdict_of(SEED, ScreeningState("eligible", answers)).criteria:
        assert bool(cv.against) == (cv.outcome in (Outcome.NOT_MET, Outcome.UNKNOWN))
        assert all(c.result is None for c in cv.against) or cv.outcome is Outcome.NOT_MET


@QUICK
@given(st.lists(partial_answer_sets, min_size=2, max_size=4))
def test_remembered_verdicts_are_the_verdicts_judged_afresh(
    answer_sets_in_turn: list[dict[str, AnswerValue]],
) -> None:
    """Each criterion's verdict, looked up by its answers' values, is the one judging gives.

    Several answer sets in turn fill the memo with other subjects' values first.
    """
    for answers in answer_sets_in_turn:
        for criterion in SEED.criteria:
            remembered = judge(criterion, answers)
            fresh = _judge(criterion, answers)
            assert remembered == fresh
            assert remembered.checks == fresh.checks
            assert remembered.against == fresh.against
