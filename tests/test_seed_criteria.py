"""Every criterion of the seed protocol, at both sides of each bound."""

from __future__ import annotations

import pytest

from flows import Protocol, Status, verdict_of
from tests.flows_helpers import ELIGIBLE_WOMAN, run


def outcome(seed: Protocol, **changes: str) -> tuple[Status, list[str]]:
    texts = {**ELIGIBLE_WOMAN, **changes}
    state, _, _ = run(seed, texts)
    verdict = verdict_of(seed, state)
    return verdict.status, [cv.criterion_id for cv in verdict.excluded_by]


def test_the_reference_subject_is_eligible(seed: Protocol) -> None:
    assert outcome(seed) == (Status.ELIGIBLE, [])


@pytest.mark.parametrize(
    ("question", "passing", "failing", "criterion"),
    [
        ("consent_signed", "yes", "no", "I1"),
        ("willing_to_comply", "yes", "no", "I1"),
        ("diagnosis", "burkitt", "other", "I2"),
        ("diagnosis", "cml_bp", "other", "I2"),
        ("diagnosis", "b_all_new", "other", "I2"),
        ("marrow_blasts", "4.9", "5", "I2"),  # <5 %: strict
        ("peripheral_blasts", "no", "yes", "I2"),
        ("extramedullary", "no", "yes", "I2"),
        ("transplant", "declines", "planned", "I2"),
        ("transplant", "ineligible", "planned", "I2"),
        ("age", "14", "13", "I3"),  # between 14 and 80 inclusive
        ("age", "80", "81", "I3"),
        ("age", "80", "80.5", "I3"),
        ("ecog", "2", "3", "I4"),
        ("ecog", "0", "4", "I4"),
        ("cd19_positive", "yes", "no", "I5"),
        ("survival_over_3_months", "yes", "no", "I6"),
        ("creatinine", "2x ULN", "2.01x ULN", "I7.1"),  # ≤2× ULN inclusive
        ("creatinine", "2.4 mg/dL ULN 1.2", "2.41 mg/dL ULN 1.2", "I7.1"),
        ("creatinine", "212.208 umol/L ULN 1.2 mg/dL", "213 umol/L ULN 1.2 mg/dL", "I7.1"),
        ("lvef", "50", "49.9", "I7.2"),  # ≥50 %
        ("spo2", "92.1", "92", "I7.3"),  # >92 %: strict
        ("bilirubin", "2x ULN", "2.1x ULN", "I7.4"),
        ("bilirubin", "2.4 mg/dL ULN 1.2", "42 umol/L ULN 20.9", "I7.4"),
        ("alt", "3x ULN", "3.01x ULN", "I7.4"),
        ("alt", "120 U/L ULN 40", "121 U/L ULN 40", "I7.4"),
        ("ast", "3x ULN", "3.5x ULN", "I7.4"),
        ("venous_access", "yes", "no", "I8.1"),
        ("pregnancy_test", "negative", "positive", "I9"),
        ("contraception", "yes", "no", "I9"),
    ],
)
def test_bounds(seed: Protocol, question: str, passing: str, failing: str, criterion: str) -> None:
    assert outcome(seed, **{question: passing}) == (Status.ELIGIBLE, [])
    assert outcome(seed, **{question: failing}) == (Status.INELIGIBLE, [criterion])


@pytest.mark.parametrize(
    ("question", "passing", "failing"),
    [
        ("hemoglobin", "80", "79.9"),  # ≥80 g/L
        ("hemoglobin", "8 g/dL", "7.9 g/dL"),
        ("anc", "1.0", "0.99"),  # ≥1.0 ×10⁹/L
        ("anc", "1000/µL", "999/µL"),
        ("platelets", "75", "74"),  # ≥75 ×10⁹/L
        ("platelets", "75000/mm3", "74 K/µL"),
    ],
)
def test_blood_counts_go_to_the_investigator(
    seed: Protocol, question: str, passing: str, failing: str
) -> None:
    assert outcome(seed, **{question: passing}) == (Status.ELIGIBLE, [])
    assert outcome(seed, **{question: failing}) == (Status.NEEDS_REVIEW, [])


def test_pregnancy_criterion_does_not_apply_without_reproductive_potential(seed: Protocol) -> None:
    woman = {**ELIGIBLE_WOMAN, "childbearing_potential": "no"}
    state, asked, _ = run(seed, woman)
    assert "pregnancy_test" not in asked and "contraception" not in asked
    verdict = verdict_of(seed, state)
    assert verdict.status is Status.ELIGIBLE
    assert verdict.of("I9").outcome.value == "not_applicable"

    man = {**ELIGIBLE_WOMAN, "sex": "male", "male_reproductive_potential": "yes"}
    state, asked, _ = run(seed, man)
    assert "childbearing_potential" not in asked and "pregnancy_test" not in asked
    assert "contraception" in asked
    assert verdict_of(seed, state).status is Status.ELIGIBLE
    man_no_contraception = {**man, "contraception": "no"}
    assert verdict_of(seed, run(seed, man_no_contraception)[0]).excluded_by[0].criterion_id == "I9"


def test_exclusion_explains_the_answer(seed: Protocol) -> None:
    state, _, _ = run(seed, {**ELIGIBLE_WOMAN, "creatinine": "2.5 mg/dL ULN 1.2"})
    (failed,) = verdict_of(seed, state).excluded_by
    (check,) = failed.against
    assert failed.criterion_id == "I7.1"
    assert (check.question_id, check.operator, check.threshold, check.of) == (
        "creatinine",
        "le",
        "2",
        "uln",
    )
    assert check.actual == "2.083× ULN"
