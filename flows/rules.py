"""Three-valued (Kleene) evaluation of rule expressions over answers, with explanations.

An answer that is missing or unknown makes a comparison *unknown*, never false, so that a
pending lab result can never exclude a subject. Each comparison reached is recorded as a
:class:`Check` so that every verdict can say which answer met or failed which threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from flows.expressions import All, AnyOf, Compare, Expr, Not
from flows.showing import format_actual
from flows.values import AnswerValue, LabResult, Quantity, Unknown

Truth = bool | None
"""True, False, or None for unknown."""


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison as evaluated: the data behind an explanation.

    Attributes:
        question_id: The question whose answer was compared.
        operator: ``eq``, ``le``, ``between``…
        threshold: The constant, formatted ("2", "14–80", "negative").
        of: ``value`` or ``uln`` (the threshold is a multiple of ULN).
        actual: The answer used, formatted in canonical units, or ``None`` if not answered.
        result: The comparison's truth value.
        supports: Whether this comparison's outcome argues *for* the enclosing rule being true
            (``result`` under an even number of negations); ``None`` when unknown.
    """

    question_id: str
    operator: str
    threshold: str
    of: str
    actual: str | None
    result: Truth
    supports: Truth


def kleene_all(values: list[Truth]) -> Truth:
    """Kleene conjunction: false wins over unknown, unknown over true."""
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def kleene_any(values: list[Truth]) -> Truth:
    """Kleene disjunction: true wins over unknown, unknown over false."""
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def _number_of(value: AnswerValue, of: str) -> Decimal | None:
    match value:
        case Quantity():
            return value.value if of == "value" else None
        case LabResult():
            return value.ratio if of == "uln" else value.value
    return None


def _compare(node: Compare, value: AnswerValue | None) -> Truth:
    if value is None or isinstance(value, Unknown):
        return None
    op, operand = node.operator, node.operand
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    number = _number_of(value, node.of)
    if number is None:
        return None
    match op:
        case "lt":
            return bool(number < operand)
        case "le":
            return bool(number <= operand)
        case "gt":
            return bool(number > operand)
        case "ge":
            return bool(number >= operand)
    low, high = operand
    return bool(low <= number <= high)


def format_threshold(node: Compare) -> str:
    """The comparison's constant as text: ``14–80``, ``2``, ``0, 1, 2``, ``yes``."""
    return node.threshold_text


def _numbers(node: Compare) -> tuple[Decimal, ...]:
    """The numbers a comparison compares with (none for yes/no and choices)."""
    operand = node.operand if node.operator == "between" else (node.operand,)
    return tuple(n for n in operand if isinstance(n, Decimal))


def evaluate(expr: Expr, answers: Mapping[str, AnswerValue]) -> tuple[Truth, tuple[Check, ...]]:
    """Evaluate an expression with Kleene logic.

    Args:
        expr: The rule.
        answers: Current answers by question id; absent means not answered (unknown).

    Returns:
        The truth value and every comparison reached, in rule order.
    """
    checks: list[Check] = []

    def walk(node: Expr, negated: bool) -> Truth:
        match node:
            case Compare():
                value = answers.get(node.q)
                result = _compare(node, value)
                supports = None if result is None else result != negated
                checks.append(
                    Check(
                        node.q,
                        node.operator,
                        format_threshold(node),
                        node.of,
                        format_actual(value, node.of, _numbers(node)),
                        result,
                        supports,
                    )
                )
                return result
            case All():
                return kleene_all([walk(part, negated) for part in node.all])
            case AnyOf():
                return kleene_any([walk(part, negated) for part in node.any])
            case Not():
                inner = walk(node.not_, not negated)
                return None if inner is None else not inner
        raise TypeError(f"not an expression: {node!r}")

    return walk(expr, False), tuple(checks)


TruthFn = Callable[[Mapping[str, AnswerValue]], Truth]


def _fold(parts: tuple[TruthFn, ...], *, dominant: bool) -> TruthFn:
    """Kleene conjunction (``dominant`` false) or disjunction (``dominant`` true).

    The dominant value decides at once; otherwise any unknown part makes the whole unknown.
    """

    def fold(answers: Mapping[str, AnswerValue]) -> Truth:
        result: Truth = not dominant
        for part in parts:
            value = part(answers)
            if value is dominant:
                return dominant
            if value is None:
                result = None
        return result

    return fold


def compile_truth(expr: Expr) -> TruthFn:
    """An expression as a function from answers to its truth value (see :func:`truth`).

    Conjunctions stop at the first false part and disjunctions at the first true one: under
    Kleene logic nothing after it can change the result.
    """
    match expr:
        case Compare():
            node, q = expr, expr.q

            def compare(answers: Mapping[str, AnswerValue]) -> Truth:
                return _compare(node, answers.get(q))

            return compare
        case All():
            return _fold(tuple(compile_truth(part) for part in expr.all), dominant=False)
        case AnyOf():
            return _fold(tuple(compile_truth(part) for part in expr.any), dominant=True)
        case Not():
            inner = compile_truth(expr.not_)

            def negation(answers: Mapping[str, AnswerValue]) -> Truth:
                value = inner(answers)
                return None if value is None else not value

            return negation
    raise TypeError(f"not an expression: {expr!r}")


def truth(expr: Expr | None, answers: Mapping[str, AnswerValue]) -> Truth:
    """The truth value alone (what :func:`evaluate` returns first); an absent expression is true.

    Every step decides relevance and eligibility many times over and needs no explanation
    for most of them, so this runs the expression's compiled form without recording checks.
    """
    return True if expr is None else expr.decide(answers)
