"""Cost of the screening engine: one dialog step, a whole screening, building the machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from transitions import Machine

from flows import Answer, Parsed, Protocol, current_question, parse_answer, start, step
from flows.loader import BUNDLED_DIR, load_protocol
from flows.machine import define, states
from tests.flows_helpers import ELIGIBLE_WOMAN

# The reference eligible subject of the tests: the benchmark screens the same answers.
ANSWERS = ELIGIBLE_WOMAN


def per_call_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 99th percentile of one call, in microseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def full_screening(protocol: Protocol) -> int:
    """Parse and step through an eligible screening; returns the number of steps."""
    state, steps = start(protocol), 0
    while not state.finished:
        question = current_question(protocol, state)
        assert question is not None
        parsed = parse_answer(question, ANSWERS[question.id])
        assert isinstance(parsed, Parsed)
        state = step(protocol, state, Answer(question.id, parsed.value)).state
        steps += 1
    return steps


def main() -> None:
    """Print the engine's figures."""
    protocol = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
    first = start(protocol)
    event = Answer("consent_signed", True)
    step(protocol, first, event)  # warm the shared machine
    p50, p99 = per_call_us(lambda: step(protocol, first, event), 2000)
    print(f"engine step (first question):   p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")
    steps = full_screening(protocol)
    p50, p99 = per_call_us(lambda: full_screening(protocol), 100)
    print(
        f"full eligible screening ({steps} steps, parsing included): "
        f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   ({p50 / steps:.1f} µs per answer)"
    )

    # Every screening above gives the same answers, so from the second on each criterion's
    # verdict is remembered (flows.verdict.judge). Real subjects' lab values differ: emptying
    # the memos first leaves only the hits within the screening itself.
    def fresh_screening() -> int:
        for criterion in protocol.criteria:
            criterion.verdict_memo.clear()
        return full_screening(protocol)

    p50, p99 = per_call_us(fresh_screening, 100)
    print(
        f"the same, every verdict new to the process: "
        f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   ({p50 / steps:.1f} µs per answer)"
    )

    def build() -> None:
        machine = Machine(
            model=None, states=states(protocol), initial=states(protocol)[0], auto_transitions=False
        )
        define(machine, protocol)

    p50, p99 = per_call_us(build, 50)
    print(f"building the dialog machine:    p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")


if __name__ == "__main__":
    main()
