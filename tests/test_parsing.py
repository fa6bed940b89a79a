from __future__ import annotations

from decimal import Decimal

import pytest

from flows import Invalid, LabResult, Parsed, Protocol, Quantity, parse_answer
from flows.messages import render
from flows.schema import LabQuestion
from flows.values import UNKNOWN


def lab(analyte: str, uln: bool = False) -> LabQuestion:
    return LabQuestion(id="x", kind="lab", analyte=analyte, text="x", uln=uln)


@pytest.mark.parametrize(
    ("analyte", "text", "canonical"),
    [
        ("hemoglobin", "9.5 g/dL", "95"),
        ("hemoglobin", "9,5 g/dl", "95"),
        ("hemoglobin", "95 g/L", "95"),
        ("hemoglobin", "95", "95"),
        ("hemoglobin", "5 mmol/L", "80.55"),
        ("anc", "1200/µL", "1.2"),
        ("anc", "1200/uL", "1.2"),
        ("anc", "1200/μL", "1.2"),  # Greek mu, not the micro sign
        ("anc", "1 200 /mm3", "1.2"),
        ("anc", "1200 cells/mm³", "1.2"),
        ("anc", "1,2", "1.2"),
        ("anc", "1.2 ×10^9/L", "1.2"),
        ("anc", "1.2 x10⁹/L", "1.2"),
        ("anc", "1.2×10⁹/l", "1.2"),
        ("anc", "1.2 10^9/L", "1.2"),
        ("anc", "1.2 G/L", "1.2"),
        ("anc", "1.2 10^3/µL", "1.2"),
        ("anc", "1.2 K/uL", "1.2"),
        ("platelets", "150", "150"),
        ("platelets", "150 000/µL", "150"),
        ("platelets", "75 ×10³/µL", "75"),
        ("creatinine", "1 mg/dL ULN 1.2", "88.42"),
        ("creatinine", "88.42 µmol/L ULN 104", "88.42"),
        ("creatinine", "0.1 mmol/L ULN 0.104", "100"),
        ("bilirubin", "1 mg/dL ULN 1.2", "17.1"),
        ("alt", "0.5 µkat/L ULN 0.7", "30"),
        ("alt", "30 IU/L ULN 40", "30"),
    ],
)
def test_unit_conversions(analyte: str, text: str, canonical: str) -> None:
    result = parse_answer(lab(analyte), text)
    assert isinstance(result, Parsed), render(result.hint, "en")
    assert isinstance(result.value, LabResult)
    assert result.value.value == Decimal(canonical)


def test_conversion_is_echoed() -> None:
    result = parse_answer(lab("hemoglobin"), "9.5 g/dL")
    assert isinstance(result, Parsed)
    assert render(result.echo, "en") == "9.5 g/dL = 95 g/L"
    counts = parse_answer(lab("anc"), "1200/µL")
    assert isinstance(counts, Parsed)
    assert render(counts.echo, "en") == "1200/µL = 1.2 ×10⁹/L"


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        ("1.8x ULN", "1.8"),
        ("1.8 × ULN", "1.8"),
        ("1,8xULN", "1.8"),
        ("2倍", "2"),
        ("2.4 mg/dL ULN 1.2", "2"),  # exactly 2× ULN: decimal arithmetic, not 1.999…
        ("2.4 mg/dL (ULN 1.2 mg/dL)", "2"),
        ("2.4 mg/dL (0.5-1.2)", "2"),
        ("212.208 µmol/L ULN 1.2 mg/dL", "2"),
    ],
)
def test_uln_forms(text: str, ratio: str) -> None:
    result = parse_answer(lab("creatinine", uln=True), text)
    assert isinstance(result, Parsed), render(result.hint, "en")
    assert isinstance(result.value, LabResult)
    assert result.value.ratio == Decimal(ratio)


def test_uln_is_required_when_the_criterion_needs_it() -> None:
    result = parse_answer(lab("creatinine", uln=True), "1.1 mg/dL")
    assert isinstance(result, Invalid)
    assert result.hint.key == "uln_needed"
    assert isinstance(parse_answer(lab("creatinine", uln=True), "1 mg/dL ULN 0"), Invalid)


@pytest.mark.parametrize(
    ("analyte", "text", "key"),
    [
        ("anc", "-1", "impossible"),
        ("anc", "1,200/µL", "ambiguous_separator"),
        ("anc", "1200", "impossible_hint_unit"),
        ("hemoglobin", "9.5", "impossible_hint_unit"),
        ("hemoglobin", "12 mg", "unknown_unit"),
        ("hemoglobin", "lots", "not_a_number"),
        ("hemoglobin", "", "empty"),
    ],
)
def test_bad_lab_input_is_a_hint_not_an_exception(analyte: str, text: str, key: str) -> None:
    result = parse_answer(lab(analyte), text)
    assert isinstance(result, Invalid)
    assert result.hint.key == key
    assert render(result.hint, "en") and render(result.hint, "zh")


def test_unit_hint_names_the_plausible_unit() -> None:
    result = parse_answer(lab("anc"), "1200")
    assert isinstance(result, Invalid)
    assert "1200/µL" in render(result.hint, "en")


def test_plausibility_of_numbers(seed: Protocol) -> None:
    lvef = seed.questions_by_id["lvef"]
    impossible = parse_answer(lvef, "150")
    assert isinstance(impossible, Invalid) and impossible.hint.key == "impossible"
    unusual = parse_answer(lvef, "85 %")
    assert isinstance(unusual, Parsed) and unusual.confirm is not None
    normal = parse_answer(lvef, "55%")
    assert isinstance(normal, Parsed) and normal.confirm is None
    assert normal.value == Quantity(Decimal(55), "%")
    age = parse_answer(seed.questions_by_id["age"], "45 years")
    assert isinstance(age, Parsed) and age.value == Quantity(Decimal(45), "years")
    assert isinstance(parse_answer(seed.questions_by_id["age"], "-3"), Invalid)


@pytest.mark.parametrize("text", ["unknown", "Pending", "?", "not done", "未知", "待定"])
def test_every_question_accepts_unknown(seed: Protocol, text: str) -> None:
    for question in seed.questions:
        result = parse_answer(question, text)
        assert isinstance(result, Parsed) and result.value == UNKNOWN


@pytest.mark.parametrize(
    ("text", "value"),
    [("yes", True), ("Y", True), ("是", True), ("no", False), ("否", False), ("No.", False)],
)
def test_yes_no(seed: Protocol, text: str, value: bool) -> None:
    result = parse_answer(seed.questions_by_id["venous_access"], text)
    assert isinstance(result, Parsed) and result.value is value
    assert isinstance(parse_answer(seed.questions_by_id["venous_access"], "maybe"), Invalid)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", "b_all_new"),
        ("b_all_rr", "b_all_rr"),
        ("Burkitt lymphoma leukemia", "burkitt"),
        ("blast", "cml_bp"),
        ("其他", "other"),
    ],
)
def test_choice(seed: Protocol, text: str, value: str) -> None:
    result = parse_answer(seed.questions_by_id["diagnosis"], text)
    assert isinstance(result, Parsed) and result.value == value
    assert isinstance(parse_answer(seed.questions_by_id["diagnosis"], "B-ALL"), Invalid)


@pytest.mark.parametrize("text", ["²", "³", "½"])
def test_digit_like_signs_are_not_option_numbers(seed: Protocol, text: str) -> None:
    """``str.isdigit`` accepts superscripts that ``int`` refuses: they must re-ask, not crash."""
    assert isinstance(parse_answer(seed.questions_by_id["diagnosis"], text), Invalid)


def test_a_number_longer_than_a_decimal_holds_is_refused_not_raised(seed: Protocol) -> None:
    """Found by hypothesis: rounding 10^28 µmol/L for the echo raised InvalidOperation."""
    from flows.parsing import Invalid

    result = parse_answer(seed.questions_by_id["bilirubin"], "10000000000000000000000000000")
    assert isinstance(result, Invalid)
