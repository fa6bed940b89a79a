"""The dialog's transitions machine: what is drawn is what runs, and where it goes is what the
rules say (every bundled protocol)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import (
    UNKNOWN,
    Answer,
    AnswerValue,
    CompletePending,
    GoBack,
    Protocol,
    ScreeningState,
    Status,
    current_question,
    start,
    step,
)
from flows.diagram import mermaid
from flows.machine import CORRECTING, EXCLUDED, TERMINALS, machine_for, states
from flows.rules import truth
from flows.verdict import Decision, assess
from tests.test_outcome_messages import PROTOCOLS, SETTINGS, answer_sets

_TERMINAL_OF = {
    Status.INELIGIBLE: "excluded",
    Status.NEEDS_REVIEW: "needs_review",
    Status.PENDING: "pending",
    Status.ELIGIBLE: "eligible",
}


def expected_stop(
    protocol: Protocol,
    answers: Mapping[str, AnswerValue],
    decisions: Mapping[str, Decision] | None = None,
) -> str:
    """Where the rules say a screening stands, computed without the machine: excluded as soon
    as a criterion is not met, else the first question asked of this patient still without an
    answer, else the outcome of every criterion."""
    decisions = decisions or {}
    if assess(protocol, answers, decisions, complete=False).status is Status.INELIGIBLE:
        return EXCLUDED
    for question in protocol.questions:
        if question.id not in answers and truth(question.relevant_if, answers) is not False:
            return question.id
    return _TERMINAL_OF[assess(protocol, answers, decisions, complete=True).status]


def machine_edges(protocol: Protocol) -> set[tuple[str, str, str]]:
    """``(source, dest, label)`` of every transition of the running machine."""
    edges: set[tuple[str, str, str]] = set()
    for trigger, event in machine_for(protocol).events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                conditions = [f"{'' if c.target else '!'}{c.func}" for c in t.conditions]
                label = f"{trigger} [{' & '.join(conditions)}]" if conditions else trigger
                edges.add((source, str(t.dest), label))
    return edges


def drawn_edges(diagram: str) -> set[tuple[str, str, str]]:
    edges = set()
    for source, dest, labels in re.findall(r"^\s*(\S+) --> (\S+): (.*)$", diagram, re.M):
        edges |= {(source, dest, label) for label in labels.split(" | ")}
    return edges


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_the_diagram_draws_the_transitions_that_run(protocol: Protocol) -> None:
    diagram = mermaid(protocol)
    assert diagram.count("stateDiagram-v2") == 1
    assert drawn_edges(diagram) == machine_edges(protocol)
    drawn_states = set(re.findall(r'state "[^"]+" as (\S+)', diagram))
    assert drawn_states == set(states(protocol)) == set(machine_for(protocol).states)


def test_the_rules_are_on_the_transitions(seed: Protocol) -> None:
    edges = machine_edges(seed)
    assert ("age", EXCLUDED, "next [excludes]") in edges
    assert ("age", "sex", "next [answered]") in edges
    # Skip logic: a question asked of women only is passed when the patient is a man.
    assert (
        "childbearing_potential",
        "male_reproductive_potential",
        "next [!asks_childbearing_potential]",
    ) in edges
    last = seed.questions[-1].id
    assert (last, "eligible", "next [answered & all_met]") in edges
    assert ("eligible", CORRECTING, "correct [reopenable]") in edges
    assert (CORRECTING, "age", "reopen [reopens_age]") in edges
    assert ("pending", seed.questions[0].id, "results_arrived [results_awaited]") in edges
    assert ("needs_review", "eligible", "decide [reviewable & all_met]") in edges
    # An answer given waits while it is unusual or changes a known one.
    assert ("age", "confirming", "give [unconfirmed]") in edges
    assert ("age", "awaiting_reason", "give [needs_reason]") in edges
    # Closing: signing only from eligible, the exclusion confirmed only from excluded.
    assert {(s, label) for s, d, label in edges if d == "closed" and label == "sign"} == {
        ("eligible", "sign")
    }
    assert ("excluded", "closed", "confirm_exclusion") in edges
    assert ("age", "closed", "close_incomplete [has_reason]") in edges
    assert ("eligible", "closed", "close_incomplete [has_reason]") not in edges
    # "next" never goes back: answering moves forward only.
    order = {qid: i for i, qid in enumerate(states(seed))}
    assert all(order[d] > order[s] for s, d, label in edges if label.startswith("next"))


def test_one_machine_per_protocol_version_and_no_screening_stays_on_it(seed: Protocol) -> None:
    """Each thread has one seat on a machine, added once; a screening leaves it after a step."""
    import threading

    assert machine_for(seed) is machine_for(seed)

    def screen() -> None:
        state = start(seed)
        for _ in range(3):
            question = current_question(seed, state)
            assert question is not None
            state = step(seed, state, Answer(question.id, UNKNOWN)).state

    screen()
    seats = list(machine_for(seed).models)
    screen()
    assert machine_for(seed).models == seats  # not added again
    other = threading.Thread(target=screen)
    other.start()
    other.join()
    models = machine_for(seed).models
    assert len(models) == len(seats) + 1  # the other thread's own seat
    assert all(getattr(m, "sitting", "") is None for m in models)


def test_moves_the_graph_lacks_are_refused(seed: Protocol) -> None:
    state = start(seed)
    assert step(seed, state, CompletePending()).rejected is not None  # nothing is pending
    assert step(seed, state, GoBack("age")).rejected is not None  # not answered yet
    assert step(seed, state, GoBack("nonsense")).rejected is not None


def answer_through(
    protocol: Protocol, state: ScreeningState, chart: Mapping[str, AnswerValue]
) -> tuple[ScreeningState, list[str]]:
    """Answer every question the dialog asks from ``chart``; check each stop on the way."""
    asked = []
    while not state.finished:
        question = current_question(protocol, state)
        assert question is not None
        # Skip logic never asks an irrelevant question.
        assert truth(question.relevant_if, state.answers) is not False
        asked.append(question.id)
        result = step(protocol, state, Answer(question.id, chart[question.id]))
        state = result.state
        # The dialog stops exactly at the answer that excludes, and nowhere else.
        assert state.at == expected_stop(protocol, state.answers, state.decisions)
        assert (state.at == EXCLUDED) == (result.verdict.status is Status.INELIGIBLE)
    return state, asked


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_the_machine_goes_where_the_rules_say(protocol: Protocol) -> None:
    @SETTINGS
    @given(answer_sets(protocol))
    def check(chart: dict[str, AnswerValue]) -> None:
        state, asked = answer_through(protocol, start(protocol), chart)
        assert state.at in TERMINALS
        final = assess(protocol, state.answers, {}, complete=state.at != EXCLUDED)
        assert _TERMINAL_OF.get(final.status) == state.at
        assert len(asked) == len(set(asked))  # a question is asked once

    check()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_a_correction_runs_the_machine_again_from_there(protocol: Protocol) -> None:
    @SETTINGS
    @given(answer_sets(protocol), answer_sets(protocol), st.data())
    def check(
        chart: dict[str, AnswerValue], other: dict[str, AnswerValue], data: st.DataObject
    ) -> None:
        state, asked = answer_through(protocol, start(protocol), chart)
        qid = data.draw(st.sampled_from(asked))
        back = step(protocol, state, GoBack(qid))
        assert back.rejected is None and back.state.at == qid
        changed = step(protocol, back.state, Answer(qid, other[qid]))
        # From the changed answer the machine goes where the rules say for the new answers,
        # passing the answers that stand and asking those that skip logic now asks.
        assert changed.state.at == expected_stop(protocol, changed.state.answers)
        final, _ = answer_through(protocol, changed.state, {**chart, qid: other[qid]})
        assert final.finished

    check()


def test_results_arriving_stop_at_each_unknown_answer_in_turn(seed: Protocol) -> None:
    from tests.test_outcome_messages import eligible_values

    chart = {**eligible_values(seed), "lvef": UNKNOWN, "platelets": UNKNOWN}
    state, _ = answer_through(seed, start(seed), chart)
    assert state.at == "pending"
    resumed = step(seed, state, CompletePending()).state
    assert resumed.at == "lvef" and resumed.revisiting
    after_lvef = step(seed, resumed, Answer("lvef", UNKNOWN))
    assert after_lvef.state.at == "platelets"  # "unknown" again is settled; on to the next


def test_a_step_leaves_no_reference_cycle_behind() -> None:
    """Taken off the machine, a screening is freed by reference counting alone: the methods
    ``add_model`` bound to it would otherwise leave it in cycles for the garbage collector."""
    import gc
    import weakref

    from flows.machine import Screening, run

    protocol = PROTOCOLS[0]
    model = Screening(protocol, {}, {})
    alive = weakref.ref(model)
    gc.disable()
    try:
        run(protocol, model, protocol.questions[0].id, "next")
        del model
        assert alive() is None
    finally:
        gc.enable()
