from __future__ import annotations

from decimal import Decimal

import pytest

from flows import (
    UNKNOWN,
    Answer,
    AnswerRecorded,
    AnswerRetired,
    AnswerValue,
    CompletePending,
    Decide,
    Decision,
    DecisionRecorded,
    DecisionWithdrawn,
    GoBack,
    Outcome,
    Protocol,
    Quantity,
    Status,
    current_question,
    progress,
    start,
    step,
    verdict_of,
)
from flows.verdict import MEMO_SIZE, judge
from tests.flows_helpers import ELIGIBLE_WOMAN, parsed, run


def test_early_stop_asks_nothing_after_the_exclusion(seed: Protocol) -> None:
    state, asked, last = run(seed, {**ELIGIBLE_WOMAN, "marrow_blasts": "5"})
    assert asked == ["consent_signed", "willing_to_comply", "diagnosis", "marrow_blasts"]
    assert state.at == "excluded"
    assert last is not None and last.verdict.status is Status.INELIGIBLE
    assert [cv.criterion_id for cv in last.verdict.excluded_by] == ["I2"]


def test_overridable_failure_continues_to_the_end(seed: Protocol) -> None:
    state, asked, _ = run(seed, {**ELIGIBLE_WOMAN, "hemoglobin": "70"})
    assert asked[-1] == "contraception"
    assert state.at == "needs_review"


@pytest.mark.parametrize(
    ("approve", "status"), [(True, Status.ELIGIBLE), (False, Status.INELIGIBLE)]
)
def test_investigator_decision(seed: Protocol, approve: bool, status: Status) -> None:
    state, _, _ = run(seed, {**ELIGIBLE_WOMAN, "anc": "0.8"})
    verdict = verdict_of(seed, state)
    assert [cv.criterion_id for cv in verdict.awaiting_review] == ["I8.2"]
    result = step(seed, state, Decide(Decision("I8.2", approve, "apheresis feasible")))
    assert result.rejected is None
    assert result.verdict.status is status
    assert result.changes == (DecisionRecorded(Decision("I8.2", approve, "apheresis feasible")),)
    # Criteria that are not overridable cannot be decided.
    assert step(seed, state, Decide(Decision("I3", True, "x"))).rejected is not None


def test_unknown_makes_pending_and_never_excludes(seed: Protocol) -> None:
    state, asked, _ = run(seed, {**ELIGIBLE_WOMAN, "lvef": "unknown", "pregnancy_test": "pending"})
    assert asked[-1] == "contraception"
    assert state.at == "pending"
    verdict = verdict_of(seed, state)
    assert verdict.status is Status.PENDING
    assert {cv.criterion_id for cv in verdict.unknown} == {"I7.2", "I9"}

    resumed = step(seed, state, CompletePending()).state
    assert resumed.at == "lvef"
    resumed = step(seed, resumed, Answer("lvef", parsed(seed, "lvef", "55").value)).state
    assert resumed.at == "pregnancy_test"  # the next unknown answer, not the end
    done = step(seed, resumed, Answer("pregnancy_test", "negative"))
    assert done.state.at == "eligible"
    assert step(seed, done.state, CompletePending()).rejected is not None


def test_correction_supersedes_and_reevaluates(seed: Protocol) -> None:
    state, _, _ = run(seed, {**ELIGIBLE_WOMAN, "age": "85"})
    assert state.at == "excluded"
    back = step(seed, state, GoBack("age"))
    assert back.state.at == "age"
    fixed = step(seed, back.state, Answer("age", parsed(seed, "age", "58").value))
    assert fixed.changes == (
        AnswerRecorded("age", parsed(seed, "age", "58").value, parsed(seed, "age", "85").value),
    )
    assert fixed.state.at == "sex"  # continues where the early stop had interrupted
    state, _, _ = run(seed, ELIGIBLE_WOMAN, fixed.state)
    assert state.at == "eligible"


def test_correction_retires_answers_that_become_irrelevant(seed: Protocol) -> None:
    state, _, _ = run(seed, ELIGIBLE_WOMAN)
    assert state.at == "eligible"
    back = step(seed, state, GoBack("sex")).state
    result = step(seed, back, Answer("sex", "male"))
    retired = [c.question_id for c in result.changes if isinstance(c, AnswerRetired)]
    assert retired == ["childbearing_potential", "pregnancy_test"]
    assert result.state.retired["pregnancy_test"] == "negative"  # kept, not deleted
    assert "pregnancy_test" not in result.state.answers
    assert result.state.at == "male_reproductive_potential"  # newly relevant: asked
    # Contraception stays while its relevance is unknown; a man without reproductive
    # potential does not need it, so it is retired then.
    last = step(seed, result.state, Answer("male_reproductive_potential", False))
    assert [c.question_id for c in last.changes if isinstance(c, AnswerRetired)] == [
        "contraception"
    ]
    assert last.state.at == "eligible"


def test_correction_withdraws_a_decision_taken_on_the_old_value(seed: Protocol) -> None:
    state, _, _ = run(seed, {**ELIGIBLE_WOMAN, "platelets": "60"})
    decided = step(seed, state, Decide(Decision("I8.2", True, "ok"))).state
    back = step(seed, decided, GoBack("platelets")).state
    result = step(seed, back, Answer("platelets", parsed(seed, "platelets", "50").value))
    assert any(isinstance(c, DecisionWithdrawn) for c in result.changes)
    assert result.state.at == "needs_review"


def test_answers_for_another_question_are_rejected(seed: Protocol) -> None:
    state = start(seed)
    result = step(seed, state, Answer("age", parsed(seed, "age", "40").value))
    assert result.rejected is not None and result.rejected.key == "not_current"
    assert result.state is state
    assert step(seed, state, GoBack("age")).rejected is not None  # not asked yet


def test_unknown_relevance_asks_the_question(seed: Protocol) -> None:
    _state, asked, _ = run(
        seed, {**ELIGIBLE_WOMAN, "sex": "unknown", "male_reproductive_potential": "no"}
    )
    assert "childbearing_potential" in asked and "male_reproductive_potential" in asked


def test_progress_counts_relevant_questions(seed: Protocol) -> None:
    state = start(seed)
    assert progress(seed, state) == (1, 26)  # both sexes' questions, until sex is known
    state, _, _ = run(seed, {k: ELIGIBLE_WOMAN[k] for k in list(ELIGIBLE_WOMAN)[:10]})
    assert current_question(seed, state) is not None
    assert progress(seed, state) == (11, 25)


def test_the_verdict_memo_stays_bounded(seed: Protocol) -> None:
    criterion = next(c for c in seed.criteria if c.questions == ("age",))
    criterion.verdict_memo.clear()
    verdicts = [
        judge(criterion, {"age": Quantity(Decimal(age) / 100, "years")})
        for age in range(MEMO_SIZE + 10)
    ]
    assert 0 < len(criterion.verdict_memo) <= MEMO_SIZE
    # Ages 0.00 to 10.33 years, all below the protocol's minimum, whether remembered or not.
    assert {v.outcome for v in verdicts} == {Outcome.NOT_MET}
    assert judge(criterion, {"age": Quantity(Decimal(30), "years")}).outcome is Outcome.MET


def test_unknown_value_is_recorded_like_any_answer(seed: Protocol) -> None:
    state = start(seed)
    result = step(seed, state, Answer("consent_signed", UNKNOWN))
    assert result.state.answers["consent_signed"] == UNKNOWN
    assert result.verdict.of("I1").outcome is Outcome.UNKNOWN


def test_previous_question(seed: Protocol) -> None:
    from flows.dialog import previous_question

    assert previous_question(seed, start(seed)) is None
    state, _, _ = run(seed, {k: ELIGIBLE_WOMAN[k] for k in list(ELIGIBLE_WOMAN)[:3]})
    assert previous_question(seed, state) == "diagnosis"
    done, _, _ = run(seed, ELIGIBLE_WOMAN)
    assert previous_question(seed, done) == "contraception"  # from an outcome: the last one


def test_a_reason_is_needed_only_to_replace_a_known_different_answer(seed: Protocol) -> None:
    from flows.dialog import replaced_answer

    def value(qid: str, text: str) -> AnswerValue:
        return parsed(seed, qid, text).value

    state, _, _ = run(seed, {**ELIGIBLE_WOMAN, "age": "unknown"})
    assert replaced_answer(state, "age", value("age", "45")) is None  # completes an unknown
    assert replaced_answer(state, "ecog", value("ecog", "1")) is None  # the same value again
    assert replaced_answer(state, "lvef", value("lvef", "55")) == value("lvef", "60")
    assert replaced_answer(state, "male_reproductive_potential", True) is None  # never asked
