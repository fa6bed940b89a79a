"""Derived values: numbers a protocol computes from answers, in a small and safe language.

A formula is Python-like arithmetic read with :mod:`ast` and evaluated node by node (never
``eval``): numbers, question ids, ``+ - * /``, parentheses, ``a if sex == 'female' else b``,
``min``/``max`` and ``in_unit(creatinine, 'mg/dL')`` (a lab value in another unit). Cockcroft–
Gault reads::

    (140 - age) * weight / (72 * in_unit(creatinine, 'mg/dL')) * (0.85 if sex == 'female' else 1)

A value is unknown when an answer it reads is unknown, and absent while one is not answered.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from decimal import Decimal, DivisionByZero, InvalidOperation

from flows.schema import (
    ChoiceQuestion,
    Derived,
    LabQuestion,
    NumberQuestion,
    Protocol,
    YesNoQuestion,
)
from flows.units import ANALYTES, normalise_unit
from flows.values import UNKNOWN, AnswerValue, LabResult, Quantity, Unknown

FUNCTIONS = ("in_unit", "min", "max")
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class _Unknown(Exception):
    """An answer the formula reads is unknown."""


class _Absent(Exception):
    """An answer the formula reads is not given yet."""


def _number(value: object) -> Decimal:
    match value:
        case Quantity():
            return value.value
        case LabResult() if value.value is not None:
            return value.value
        case Decimal():
            return value
    raise _Unknown  # a lab result given only as a multiple of the ULN has no value to compute


def _name(node: ast.expr, answers: Mapping[str, AnswerValue]) -> AnswerValue:
    assert isinstance(node, ast.Name)
    if node.id not in answers:
        raise _Absent
    value = answers[node.id]
    if isinstance(value, Unknown):
        raise _Unknown
    return value


def _eval(node: ast.expr, answers: Mapping[str, AnswerValue]) -> Decimal:
    match node:
        case ast.Constant(value=bool()):
            raise ValueError("a yes/no constant is not a number")
        case ast.Constant(value=int() | float() as number):
            return Decimal(str(number))
        case ast.Name():
            return _number(_name(node, answers))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, answers)
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPERATORS:
            a, b = _eval(left, answers), _eval(right, answers)
            match op:
                case ast.Add():
                    return a + b
                case ast.Sub():
                    return a - b
                case ast.Mult():
                    return a * b
            if b == 0:
                raise _Unknown
            return a / b
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body if _holds(test, answers) else orelse, answers)
        case ast.Call(
            func=ast.Name(id="in_unit"), args=[ast.Name() as arg, ast.Constant(value=unit)]
        ):
            value = _name(arg, answers)
            if not isinstance(value, LabResult) or value.value is None:
                raise _Unknown
            return value.value / ANALYTES[value.analyte].units[normalise_unit(str(unit))]
        case ast.Call(func=ast.Name(id="min" | "max" as name), args=args) if len(args) >= 2:
            values = [_eval(arg, answers) for arg in args]
            return min(values) if name == "min" else max(values)
    raise ValueError(f"not allowed in a formula: {ast.unparse(node)}")


def _holds(test: ast.expr, answers: Mapping[str, AnswerValue]) -> bool:
    match test:
        case ast.Compare(left=ast.Name() as left, ops=[op], comparators=[ast.Constant(value=c)]):
            equal = _name(left, answers) == c
            return equal if isinstance(op, ast.Eq) else not equal
        case ast.Name():
            return _name(test, answers) is True
    raise ValueError(f"not a condition: {ast.unparse(test)}")


def evaluate(derived: Derived, answers: Mapping[str, AnswerValue]) -> AnswerValue | None:
    """The derived value: a quantity, unknown, or ``None`` while an input is not answered."""
    try:
        value = _eval(derived.tree, answers)
    except _Absent:
        return None
    except (_Unknown, DivisionByZero, InvalidOperation):
        return UNKNOWN
    return Quantity(value, derived.unit)


def with_derived(
    protocol: Protocol, answers: Mapping[str, AnswerValue]
) -> Mapping[str, AnswerValue]:
    """The answers with the protocol's derived values added (the same mapping when none)."""
    if not protocol.derived:
        return answers
    extended = dict(answers)
    for derived in protocol.derived:
        value = evaluate(derived, extended)
        if value is not None:
            extended[derived.id] = value
    return extended


def check(protocol: Protocol, derived: Derived) -> list[str]:
    """What is wrong with a formula: syntax, names, functions, units, conditions."""
    try:
        tree = ast.parse(derived.formula, mode="eval").body
    except SyntaxError as exc:
        return [f"not a formula: {exc.msg}"]
    problems: list[str] = []
    known = {d.id: d for d in protocol.derived[: protocol.derived.index(derived)]}

    def lab_value(name: str, question: LabQuestion) -> None:
        # A question with `uln: true` also takes a bare multiple of the upper limit of normal
        # ("0.8x ULN"), which has no value to compute with: the formula would never be known.
        if question.uln:
            problems.append(
                f"'{name}' takes a multiple of the upper limit of normal, which has no value "
                "to compute with: read a lab question without `uln: true`"
            )

    def number(node: ast.expr) -> None:
        match node:
            case ast.Constant(value=int() | float()) if not isinstance(node.value, bool):
                return
            case ast.Name(id=name):
                question = protocol.questions_by_id.get(name)
                if isinstance(question, LabQuestion):
                    lab_value(name, question)
                    return
                if name in known or isinstance(question, NumberQuestion):
                    return
                problems.append(f"'{name}' is not a question with a number, nor a value above")
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                number(operand)
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPERATORS:
                number(left)
                number(right)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                condition(test)
                number(body)
                number(orelse)
            case ast.Call(
                func=ast.Name(id="in_unit"), args=[ast.Name(id=name), ast.Constant(value=str(unit))]
            ):
                question = protocol.questions_by_id.get(name)
                if not isinstance(question, LabQuestion):
                    problems.append(f"in_unit needs a lab question, not '{name}'")
                elif normalise_unit(unit) not in ANALYTES[question.analyte].units:
                    problems.append(f"'{unit}' is not a unit of {question.analyte}")
                else:
                    lab_value(name, question)
            case ast.Call(func=ast.Name(id="min" | "max"), args=args) if len(args) >= 2:
                for arg in args:
                    number(arg)
            case _:
                allowed = ", ".join(FUNCTIONS)
                problems.append(
                    f"not allowed: {ast.unparse(node)} (numbers, question ids, + - * /, "
                    f"'a if x == \"option\" else b', and {allowed})"
                )

    def condition(node: ast.expr) -> None:
        match node:
            case ast.Compare(
                left=ast.Name(id=name),
                ops=[ast.Eq() | ast.NotEq()],
                comparators=[ast.Constant(value=c)],
            ):
                question = protocol.questions_by_id.get(name)
                if isinstance(question, ChoiceQuestion):
                    if c not in {o.id for o in question.options}:
                        problems.append(f"{c!r} is not an option of '{name}'")
                elif isinstance(question, YesNoQuestion):
                    if not isinstance(c, bool):
                        problems.append(f"'{name}' is yes/no: compare it with True or False")
                else:
                    problems.append(f"'{name}' is not a choice or yes/no question")
            case ast.Name(id=name) if isinstance(protocol.questions_by_id.get(name), YesNoQuestion):
                return
            case _:
                problems.append(f"not a condition: {ast.unparse(node)}")

    number(tree)
    if derived.id in protocol.questions_by_id:
        problems.append(f"'{derived.id}' is also a question's id")
    return problems
