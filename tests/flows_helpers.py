"""Helpers to drive the engine in tests: answer a seed screening from typed text."""

from __future__ import annotations

from collections.abc import Mapping

from flows import (
    Answer,
    Parsed,
    Protocol,
    ScreeningState,
    Step,
    current_question,
    parse_answer,
    start,
    step,
)

ELIGIBLE_WOMAN: dict[str, str] = {
    "consent_signed": "yes",
    "willing_to_comply": "yes",
    "diagnosis": "b_all_rr",
    "marrow_blasts": "2",
    "peripheral_blasts": "no",
    "extramedullary": "no",
    "transplant": "no_donor",
    "age": "45",
    "sex": "female",
    "ecog": "1",
    "cd19_positive": "yes",
    "survival_over_3_months": "yes",
    "creatinine": "0.8x ULN",
    "lvef": "60",
    "spo2": "97",
    "bilirubin": "10 umol/L ULN 21",
    "alt": "30 U/L ULN 40",
    "ast": "35 U/L ULN 40",
    "venous_access": "yes",
    "hemoglobin": "9.5 g/dL",
    "anc": "1200/µL",
    "platelets": "150",
    "childbearing_potential": "yes",
    "pregnancy_test": "negative",
    "contraception": "yes",
}


def parsed(protocol: Protocol, qid: str, text: str) -> Parsed:
    result = parse_answer(protocol.questions_by_id[qid], text)
    assert isinstance(result, Parsed), (qid, text, result)
    return result


def run(
    protocol: Protocol,
    texts: Mapping[str, str],
    state: ScreeningState | None = None,
) -> tuple[ScreeningState, list[str], Step | None]:
    """Answer questions from ``texts`` until the dialog finishes or asks something not given."""
    state = state or start(protocol)
    asked: list[str] = []
    last: Step | None = None
    while not state.finished:
        question = current_question(protocol, state)
        assert question is not None
        if question.id not in texts:
            break
        asked.append(question.id)
        last = step(
            protocol,
            state,
            Answer(question.id, parsed(protocol, question.id, texts[question.id]).value),
        )
        assert last.rejected is None
        state = last.state
    return state, asked, last
