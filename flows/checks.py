"""Semantic checks of a protocol beyond its schema: references, order, types, reachability.

Each finding names the field path (``criteria[3].rule``) so that ``prescreen protocol check``
can point at the offending line of the YAML file.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from flows import formula
from flows.checklist import expected
from flows.expressions import (
    NUMERIC_OPERATORS,
    All,
    AnyOf,
    Compare,
    Expr,
    Not,
    referenced_questions,
)
from flows.rules import truth
from flows.schema import (
    ChoiceQuestion,
    LabQuestion,
    NumberQuestion,
    Protocol,
    Question,
    YesNoQuestion,
)
from flows.units import ANALYTES
from flows.values import AnswerValue, LabResult, Quantity


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a protocol."""

    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def _comparisons(expr: Expr) -> list[Compare]:
    match expr:
        case Compare():
            return [expr]
        case All():
            return [c for part in expr.all for c in _comparisons(part)]
        case AnyOf():
            return [c for part in expr.any for c in _comparisons(part)]
        case Not():
            return _comparisons(expr.not_)
    return []


def _check_comparison(cmp: Compare, question: Question, path: str) -> list[Finding]:
    op = cmp.operator
    numeric = isinstance(question, NumberQuestion | LabQuestion)
    if op in NUMERIC_OPERATORS and not numeric:
        return [Finding(path, f"'{op}' compares numbers but '{question.id}' is {question.kind}")]
    if op not in NUMERIC_OPERATORS and numeric:
        return [Finding(path, f"'{op}' cannot compare the number '{question.id}'")]
    if cmp.of == "uln" and not (isinstance(question, LabQuestion) and question.uln):
        return [Finding(path, f"'of: uln' needs a lab question with 'uln: true' ('{question.id}')")]
    values = cmp.in_ if op == "in" else (cmp.operand,) if op in {"eq", "ne"} else ()
    findings: list[Finding] = []
    for value in values or ():
        if isinstance(question, YesNoQuestion) and not isinstance(value, bool):
            findings.append(Finding(path, f"'{question.id}' is yes/no; compare with true/false"))
        if isinstance(question, ChoiceQuestion) and value not in {o.id for o in question.options}:
            findings.append(Finding(path, f"'{value}' is not an option of '{question.id}'"))
    return findings


def _check_expr(protocol: Protocol, expr: Expr, path: str, before: int | None) -> list[Finding]:
    """Check references and types; ``before`` limits references to earlier questions."""
    findings: list[Finding] = []
    for cmp in _comparisons(expr):
        question = protocol.questions_by_id.get(cmp.q)
        if question is None and cmp.q in protocol.derived_by_id and before is None:
            if cmp.operator not in NUMERIC_OPERATORS or cmp.of == "uln":
                findings.append(
                    Finding(
                        path,
                        f"'{cmp.q}' is a derived number: compare it with lt, le, gt, ge or between",
                    )
                )
            continue
        if question is None:
            findings.append(Finding(path, f"undefined question '{cmp.q}'"))
            continue
        if before is not None and protocol.question_index[cmp.q] >= before:
            findings.append(
                Finding(
                    path, f"relevance refers to '{cmp.q}', which is not asked before this question"
                )
            )
        findings += _check_comparison(cmp, question, path)
    return findings


def _domain(question: Question, thresholds: list[Decimal]) -> list[AnswerValue]:
    """Representative known answers: enough to decide any comparison in the protocol."""
    match question:
        case YesNoQuestion():
            return [True, False]
        case ChoiceQuestion():
            return [o.id for o in question.options]
    points = sorted({p for t in thresholds for p in (t - 1, t, t + 1)} or {Decimal(0)})
    if isinstance(question, NumberQuestion):
        return [Quantity(p, question.unit) for p in points]
    analyte = question.analyte
    return [LabResult(analyte, p, None, None, p) for p in points]


def _reachable(protocol: Protocol, question: Question) -> bool:
    """Whether some combination of known earlier answers makes the question relevant.

    Unknown answers are left out: they make relevance unknown, which asks the question, but a
    question that no real answer can make relevant is a mistake in the protocol.
    """
    if question.relevant_if is None:
        return True
    refs = referenced_questions(question.relevant_if)
    thresholds: dict[str, list[Decimal]] = {}
    for cmp in _comparisons(question.relevant_if):
        if cmp.operator == "between":
            thresholds.setdefault(cmp.q, []).extend(cmp.between or ())
        elif cmp.operator in NUMERIC_OPERATORS:
            thresholds.setdefault(cmp.q, []).append(cmp.operand)
    domains = [_domain(protocol.questions_by_id[q], thresholds.get(q, [])) for q in refs]
    if math.prod(len(d) for d in domains) > 100_000:
        return True  # too many combinations to enumerate: do not claim it unreachable
    for combo in itertools.product(*domains):
        if truth(question.relevant_if, dict(zip(refs, combo, strict=True))) is True:
            return True
    return False


def _check_groups(protocol: Protocol) -> list[Finding]:
    """A checklist's questions need an answer that excludes no one, to offer as expected."""
    return [
        Finding(
            f"questions[{i}].group",
            f"'{q.id}' cannot be in a checklist: both yes and no exclude the patient",
        )
        for i, q in enumerate(protocol.questions)
        if isinstance(q, YesNoQuestion) and q.group is not None and expected(protocol, q) is None
    ]


def check_protocol(protocol: Protocol) -> list[Finding]:
    """Find everything wrong with a schema-valid protocol.

    Args:
        protocol: The protocol.

    Returns:
        Findings in file order; errors make the protocol unusable, warnings do not.
    """
    findings: list[Finding] = []
    seen: set[str] = set()
    for i, question in enumerate(protocol.questions):
        path = f"questions[{i}]"
        if question.id in seen:
            findings.append(Finding(f"{path}.id", f"duplicate question id '{question.id}'"))
        seen.add(question.id)
        if isinstance(question, ChoiceQuestion):
            option_ids = [o.id for o in question.options]
            for dup in sorted({o for o in option_ids if option_ids.count(o) > 1}):
                findings.append(Finding(f"{path}.options", f"duplicate option id '{dup}'"))
        if isinstance(question, LabQuestion) and question.analyte not in ANALYTES:
            findings.append(
                Finding(
                    f"{path}.analyte",
                    f"unknown analyte '{question.analyte}'; known: {', '.join(sorted(ANALYTES))}",
                )
            )
        if question.relevant_if is not None:
            findings += _check_expr(protocol, question.relevant_if, f"{path}.relevant_if", i)
    findings += _check_groups(protocol)
    for i, derived in enumerate(protocol.derived):
        findings += [
            Finding(f"derived[{i}].formula", problem)
            for problem in formula.check(protocol, derived)
        ]
    criterion_ids: set[str] = set()
    used: set[str] = set()
    for i, criterion in enumerate(protocol.criteria):
        path = f"criteria[{i}]"
        if criterion.id in criterion_ids:
            findings.append(Finding(f"{path}.id", f"duplicate criterion id '{criterion.id}'"))
        criterion_ids.add(criterion.id)
        if criterion.rule is not None:
            findings += _check_expr(protocol, criterion.rule, f"{path}.rule", None)
            used.update(referenced_questions(criterion.rule))
        if criterion.applies_if is not None:
            findings += _check_expr(protocol, criterion.applies_if, f"{path}.applies_if", None)
            used.update(referenced_questions(criterion.applies_if))
    used.update(q for name in list(used) for q in protocol.answers_read(name))
    if any(f.severity == "error" for f in findings):
        return findings  # reachability needs valid references
    relevance_refs = {
        q
        for other in protocol.questions
        if other.relevant_if is not None
        for q in referenced_questions(other.relevant_if)
    }
    for i, question in enumerate(protocol.questions):
        if not _reachable(protocol, question):
            findings.append(
                Finding(
                    f"questions[{i}].relevant_if",
                    f"question '{question.id}' is unreachable: its relevance "
                    "is false for every possible earlier answer",
                )
            )
        if question.id not in used and question.id not in relevance_refs:
            findings.append(
                Finding(
                    f"questions[{i}]",
                    f"question '{question.id}' is used by no criterion and no relevance condition",
                    "warning",
                )
            )
    return findings
