"""The dialog as a Mermaid state diagram, rendered by ``transitions``' diagram extension."""

from __future__ import annotations

from transitions.extensions import GraphMachine

from flows.dialog import ELIGIBLE, EXCLUDED, NEEDS_REVIEW, PENDING
from flows.schema import Protocol


def first_pass_successors(protocol: Protocol, index: int) -> list[str]:
    """Where the first pass can go after answering question ``index``.

    The next question, or past it when it is conditional (skip logic), down to the first
    unconditional one; the outcomes after the last question; and exclusion when the answer can
    fail a criterion that is not overridable.
    """
    questions = protocol.questions
    dests: list[str] = []
    for later in questions[index + 1 :]:
        dests.append(later.id)
        if later.relevant_if is None:
            break
    else:
        dests += [NEEDS_REVIEW, PENDING, ELIGIBLE]
    qid = questions[index].id
    if any(
        not protocol.criteria_by_id[cid].overridable
        for cid in protocol.criteria_of_question.get(qid, ())
    ):
        dests.append(EXCLUDED)
    return dests


class _Model:
    pass


def mermaid(protocol: Protocol) -> str:
    """The first-pass dialog as a Mermaid ``stateDiagram-v2``.

    Corrections (back to any answered question) and the return to where the dialog was are
    left out: they connect every pair of states and would hide the protocol's structure.
    """
    states = [q.id for q in protocol.questions] + [EXCLUDED, NEEDS_REVIEW, PENDING, ELIGIBLE]
    model = _Model()
    machine = GraphMachine(
        model=model,
        states=states,
        initial=states[0],
        auto_transitions=False,
        graph_engine="mermaid",
        title=protocol.label,
        show_conditions=False,
    )
    for i, question in enumerate(protocol.questions):
        for dest in first_pass_successors(protocol, i):
            label = "answer" if dest != EXCLUDED else "criterion not met"
            if dest in protocol.questions_by_id and protocol.questions_by_id[dest].relevant_if:
                label = "answer (if relevant)"
            machine.add_transition(label, question.id, dest)
    machine.add_transition("results arrive", PENDING, states[0])
    for dest in (ELIGIBLE, EXCLUDED, PENDING):
        machine.add_transition("investigator decides", NEEDS_REVIEW, dest)
    text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    return text
