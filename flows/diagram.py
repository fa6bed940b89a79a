"""The dialog's machine as a Mermaid state diagram, drawn by ``transitions`` itself.

The diagram is built by :func:`flows.machine.define`, the function that builds the machine
that runs: every edge drawn is a transition the dialog can take, labelled with its trigger and
the conditions (``[answered & all_met]``) or negated ``unless`` callbacks (``[!asks_sex]``)
that choose it.
"""

from __future__ import annotations

from transitions.extensions import GraphMachine

from flows.machine import define, states
from flows.schema import Protocol


class _Drawn:
    """The model a diagram is drawn for (the diagram belongs to a model in ``transitions``)."""


def mermaid(protocol: Protocol) -> str:
    """The protocol's dialog machine as a Mermaid ``stateDiagram-v2``."""
    model = _Drawn()
    machine = GraphMachine(
        model=model,
        states=states(protocol),
        initial=protocol.questions[0].id,
        auto_transitions=False,
        graph_engine="mermaid",
        title=protocol.label,
        show_conditions=True,
    )
    define(machine, protocol)
    text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    return text
