"""Rule expressions: comparisons of answers with constants, combined with all/any/not.

A criterion's ``rule``, its ``applies_if`` and a question's ``relevant_if`` are expressions,
read from the YAML and evaluated with Kleene logic by :mod:`flows.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from flows.base import Frozen
from flows.values import fmt_decimal


class _Expr(Frozen):
    @cached_property
    def decide(self) -> Callable[[Mapping[str, Any]], bool | None]:
        """This expression's Kleene truth as a function of the answers, built once.

        See :func:`flows.rules.compile_truth`; verdicts and relevance are decided many times
        per answer, so the expression tree is not walked anew each time.
        """
        from flows.rules import compile_truth  # the rules build on the schema

        return compile_truth(self)  # type: ignore[arg-type]


Operator = Literal["eq", "ne", "in", "lt", "le", "gt", "ge", "between"]
NUMERIC_OPERATORS: frozenset[str] = frozenset({"lt", "le", "gt", "ge", "between"})


class Compare(_Expr):
    """A comparison of one question's answer with a constant.

    ``between`` is inclusive at both ends, as protocols write "between 14 and 80 (inclusive)".
    ``of: uln`` makes the bound a multiple of the laboratory's upper limit of normal.
    """

    q: str
    eq: bool | str | None = None
    ne: bool | str | None = None
    in_: tuple[bool | str, ...] | None = Field(default=None, alias="in")
    lt: Decimal | None = None
    le: Decimal | None = None
    gt: Decimal | None = None
    ge: Decimal | None = None
    between: tuple[Decimal, Decimal] | None = None
    of: Literal["value", "uln"] = "value"

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> Compare:
        given = [
            name
            for name in ("eq", "ne", "in_", "lt", "le", "gt", "ge", "between")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"a comparison needs exactly one operator, got {len(given)}")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("between: the lower bound is above the upper bound")
        return self

    @cached_property
    def operator(self) -> Operator:
        """The comparison's operator name."""
        names: tuple[Operator, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "between")
        for name in names:
            if getattr(self, name) is not None:
                return name
        return "in"

    @cached_property
    def operand(self) -> Any:
        """The constant the answer is compared with."""
        op = self.operator
        return self.in_ if op == "in" else getattr(self, op)

    @cached_property
    def threshold_text(self) -> str:
        """The constant as text (``14–80``, ``2``, ``0, 1, 2``, ``yes``), computed once."""

        def one(v: object) -> str:
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, Decimal):
                return fmt_decimal(v)
            return str(v)

        operand = self.operand
        if self.operator == "between":
            return f"{one(operand[0])}–{one(operand[1])}"
        if self.operator == "in":
            return ", ".join(one(v) for v in operand)
        return one(operand)


class All(_Expr):
    """True when every part is true (Kleene conjunction)."""

    all: tuple[Expr, ...] = Field(min_length=1)


class AnyOf(_Expr):
    """True when at least one part is true (Kleene disjunction)."""

    any: tuple[Expr, ...] = Field(min_length=1)


class Not(_Expr):
    """Negation; unknown stays unknown."""

    not_: Expr = Field(alias="not")


def _expr_tag(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "compare"
    tags: dict[type[BaseModel], str] = {All: "all", AnyOf: "any", Not: "not"}
    return tags.get(type(value), "compare")


Expr = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Compare, Tag("compare")],
    Discriminator(_expr_tag),
]


def referenced_questions(expr: Expr) -> tuple[str, ...]:
    """Question ids an expression reads, in order of first appearance."""
    seen: dict[str, None] = {}

    def walk(node: Expr) -> None:
        match node:
            case Compare():
                seen.setdefault(node.q, None)
            case All():
                for part in node.all:
                    walk(part)
            case AnyOf():
                for part in node.any:
                    walk(part)
            case Not():
                walk(node.not_)

    walk(expr)
    return tuple(seen)


def comparisons(expr: Expr) -> tuple[Compare, ...]:
    """Every comparison of an expression, in rule order."""
    match expr:
        case Compare():
            return (expr,)
        case All():
            return tuple(c for part in expr.all for c in comparisons(part))
        case AnyOf():
            return tuple(c for part in expr.any for c in comparisons(part))
        case Not():
            return comparisons(expr.not_)
    return ()


All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()
