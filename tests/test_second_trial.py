"""The second bundled trial, ThisCART19A (NCT05679687): a derived value (Cockcroft-Gault), a
conditional threshold (bilirubin with Gilbert syndrome) and a criterion left to the
investigator's judgement."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from flows import (
    UNKNOWN,
    Answer,
    AnswerValue,
    Decide,
    Decision,
    Invalid,
    Parsed,
    Protocol,
    ScreeningState,
    current_question,
    load_protocol,
    parse_answer,
    start,
    step,
    verdict_of,
)
from flows.batch import read_answer
from flows.checks import check_protocol
from flows.formula import evaluate
from flows.loader import BUNDLED_DIR, validate_protocol
from flows.messages import render
from flows.render import outcome_text, summary
from flows.values import Quantity
from flows.verdict import Outcome, Status
from tests.bot_fixtures import BotWorld

BRIDGE_FILE = BUNDLED_DIR / "thiscart19a_bridge_v1.yaml"
ELIGIBLE: dict[str, str] = {
    "consent_signed": "yes",
    "age": "40",
    "sex": "female",
    "hsct_intention": "yes",
    "diagnosis": "relapsed",
    "ph_positive": "no",
    "life_expectancy": "yes",
    "ecog": "1",
    "weight": "60 kg",
    "creatinine": "0.8 mg/dL",
    "bilirubin": "1.0 mg/dL ULN 1.2",
    "alt": "30 U/L ULN 40",
    "ast": "35 U/L ULN 40",
    "sao2": "96",
    "lvef": "55",
    "cd19_confirmed": "yes",
}


@pytest.fixture(scope="module")
def bridge() -> Protocol:
    return load_protocol(BRIDGE_FILE)


def screen(protocol: Protocol, chart: dict[str, str]) -> ScreeningState:
    state = start(protocol)
    while not state.finished:
        question = current_question(protocol, state)
        assert question is not None
        parsed = parse_answer(question, chart[question.id])
        value: AnswerValue = parsed.value  # type: ignore[union-attr]
        result = step(protocol, state, Answer(question.id, value))
        assert result.rejected is None
        state = result.state
    return state


def test_the_protocol_checks_clean(bridge: Protocol) -> None:
    assert [f for f in check_protocol(bridge) if f.severity == "error"] == []
    assert bridge.registry == "NCT05679687"
    assert [c.number for c in bridge.criteria] == [
        "1", "2", "3", "4", "5", "6", "7.1", "7.2", "7.3", "7.4", "7.5", "8",
    ]  # fmt: skip


def test_creatinine_clearance_is_cockcroft_gault(bridge: Protocol) -> None:
    crcl = bridge.derived_by_id["crcl"]
    answers: dict[str, AnswerValue] = {
        q: parse_answer(bridge.questions_by_id[q], ELIGIBLE[q]).value  # type: ignore[union-attr]
        for q in ("age", "sex", "weight", "creatinine")
    }
    value = evaluate(crcl, answers)
    # (140 − 40) × 60 / (72 × 0.8) × 0.85 = 88.54 mL/min
    assert isinstance(value, Quantity) and value.unit == "mL/min"
    assert abs(value.value - Decimal("88.5417")) < Decimal("0.001")
    man = evaluate(crcl, {**answers, "sex": "male"})
    assert isinstance(man, Quantity) and abs(man.value - Decimal("104.1667")) < Decimal("0.001")
    assert evaluate(crcl, {**answers, "sex": UNKNOWN}) == UNKNOWN
    assert evaluate(crcl, {k: v for k, v in answers.items() if k != "weight"}) is None


def test_low_clearance_excludes_and_the_explanation_shows_the_inputs(bridge: Protocol) -> None:
    state = screen(bridge, {**ELIGIBLE, "age": "60", "weight": "40 kg", "creatinine": "3 mg/dL"})
    assert state.at == "excluded"
    text = outcome_text(bridge, state, verdict_of(bridge, state), "en")
    assert "Not eligible: criterion 7.2 is not met." in text
    # (140 − 60) × 40 / (72 × 3) × 0.85 = 12.6 mL/min
    assert (
        "Creatinine clearance: 12.6 mL/min (Cockcroft-Gault: Age 60 years, Weight 40 kg, "
        "Creatinine 265.26 µmol/L, Sex Female); required > 30 mL/min"
    ) in text


def test_bilirubin_up_to_three_times_uln_with_gilbert_syndrome(bridge: Protocol) -> None:
    high = {**ELIGIBLE, "bilirubin": "2.5x ULN"}
    with_gilbert = screen(bridge, {**high, "gilbert_or_liver": "yes"})
    assert with_gilbert.at == "needs_review"  # only marrow function is left: the investigator's
    without = screen(bridge, {**high, "gilbert_or_liver": "no"})
    assert without.at == "excluded"
    assert verdict_of(bridge, without).of("I7.3").outcome is Outcome.NOT_MET
    normal = screen(bridge, ELIGIBLE)
    assert "gilbert_or_liver" not in normal.answers  # asked only above 2× ULN


def test_ph_positive_disease_needs_tki_intolerance_or_two_tkis(bridge: Protocol) -> None:
    ph = {**ELIGIBLE, "ph_positive": "yes"}
    assert screen(bridge, {**ph, "tki_intolerant": "yes"}).at == "needs_review"
    assert screen(bridge, {**ph, "tki_intolerant": "no", "tki_count": "at_least_2"}).at == (
        "needs_review"
    )
    assert screen(bridge, {**ph, "tki_intolerant": "no", "tki_count": "fewer_than_2"}).at == (
        "excluded"
    )


def test_marrow_function_is_the_investigators_judgement(bridge: Protocol) -> None:
    state = screen(bridge, ELIGIBLE)
    verdict = verdict_of(bridge, state)
    assert state.at == "needs_review" and verdict.status is Status.NEEDS_REVIEW
    assert [cv.criterion_id for cv in verdict.awaiting_review] == ["I7.1"]
    assert verdict.unknown == ()  # waiting for the investigator, not for a result
    assert "⚖️ Criterion 7.1 · Marrow function — awaiting the investigator's decision" in summary(
        bridge, verdict, "en"
    )
    adequate = step(bridge, state, Decide(Decision("I7.1", True, "counts adequate for LD")))
    assert adequate.state.at == "eligible"
    assert adequate.verdict.of("I7.1").outcome is Outcome.MET
    inadequate = step(bridge, state, Decide(Decision("I7.1", False, "marrow aplastic")))
    assert inadequate.state.at == "excluded"


def test_protocol_check_refuses_unsafe_or_wrong_formulas(tmp_path: Path) -> None:
    data = yaml.safe_load(BRIDGE_FILE.read_text(encoding="utf-8"))
    for formula, says in (
        ("__import__('os').system('true')", "not allowed"),
        ("age * height", "'height' is not a question with a number"),
        ("in_unit(creatinine, 'furlongs')", "'furlongs' is not a unit of creatinine"),
        ("1 if sex == 'other' else 2", "'other' is not an option of 'sex'"),
        ("(140 - age", "not a formula"),
        ("in_unit(bilirubin, 'mg/dL')", "'bilirubin' takes a multiple of the upper limit"),
        ("alt * 2", "'alt' takes a multiple of the upper limit"),
    ):
        data["derived"][0]["formula"] = formula
        _, findings = validate_protocol(data)
        assert any(says in f.message and f.path == "derived[0].formula" for f in findings), (
            formula,
            findings,
        )


def test_creatinine_for_the_clearance_is_the_value_not_a_multiple_of_uln(
    bridge: Protocol, seed: Protocol
) -> None:
    # Cockcroft-Gault needs serum creatinine itself: "0.8x ULN" would leave the clearance, and
    # so criterion 7.2, unknown with no answer left to give. The seed trial's criterion is a
    # multiple of ULN, and takes it.
    creatinine = bridge.questions_by_id["creatinine"]
    refused = read_answer(bridge, creatinine, "0.8x ULN")
    assert isinstance(refused, Invalid)
    assert render(refused.hint, "en") == (
        "This question needs the value itself, as printed with its unit (µmol/L, mg/dL, mmol/L): "
        "Creatinine cannot be given here as a multiple of the upper limit of normal."
    )
    assert isinstance(read_answer(bridge, creatinine, "0.9 mg/dL"), Parsed)
    assert isinstance(read_answer(seed, seed.questions_by_id["creatinine"], "0.8x ULN"), Parsed)


async def test_new_with_a_code_asks_for_the_trial_when_two_are_offered(
    world: BotWorld, seed: Protocol, bridge: Protocol
) -> None:
    from flows import Catalog
    from tests.bot_fixtures import ALICE
    from tests.test_bot import restarted

    async with restarted(world, seed, catalog=Catalog((seed, bridge))) as both:
        alice = both.chat(ALICE)
        asked = await alice.send("/new B-201")
        assert asked[0].startswith("Which trials? Every active trial is ticked")
        await alice.press("☑ CD19")  # the seed trial left out: the bridge trial alone
        started = await alice.press("▶ Start (1)")
        assert (
            "Screening B-201 started (ThisCART19A bridging to allo-HSCT in R/R B-ALL)"
            in (started[0])
        )
        s = both.repo.find_screening("B-201")
        assert s is not None and s.protocol_id == "thiscart19a-bridge"


def test_an_unknown_trial_to_offer_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRESCREEN_DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    monkeypatch.setenv("PRESCREEN_TRIALS", "cd19-cart-ball-consolidation, no-such-trial")
    result = CliRunner().invoke(app, ["staff", "add", "42", "Dr Chen"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: PRESCREEN_TRIALS names no-such-trial, which no protocol file defines; loaded: "
        "cd19-cart-ball-consolidation, thiscart19a-bridge"
    )
