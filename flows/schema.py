"""The protocol schema: a trial's eligibility screen as frozen, validated data.

Questions (what the coordinator is asked) are kept apart from criteria (what the protocol
requires); a criterion's ``rule`` is an expression over question answers. Unknown keys are
rejected everywhere so that a typo in a protocol file is an error, not a silently ignored rule.
"""

from __future__ import annotations

import ast
import hashlib
import json
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from flows.base import ID_PATTERN, Frozen
from flows.expressions import Expr, comparisons, referenced_questions
from flows.text import Lang, Text

# --- questions --------------------------------------------------------------------------------


class Option(Frozen):
    """One choice of a single-choice question."""

    id: str
    text: Text


class Bounds(Frozen):
    """Plausibility bounds in the question's canonical unit.

    Outside ``min``/``max`` a value is impossible and refused; outside ``soft_min``/``soft_max``
    it is possible but unusual and the coordinator is asked to confirm it.
    """

    min: Decimal | None = None
    max: Decimal | None = None
    soft_min: Decimal | None = None
    soft_max: Decimal | None = None


class _QuestionBase(Frozen):
    id: str = Field(pattern=ID_PATTERN)
    text: Text
    short: Text | None = None
    aliases: tuple[str, ...] = ()
    help: Text | None = None
    relevant_if: Expr | None = None
    concept: str | None = Field(default=None, pattern=ID_PATTERN)
    """What the question measures, shared with other trials (``age``, ``bilirubin_uln``): in a
    pass over several trials, a concept is asked once and its answer serves every trial that
    reads it (``flows.joint``)."""

    @property
    def label(self) -> Text:
        """A short name for hints and summaries ("LVEF"); the id when none is given."""
        return self.short or Text(en=self.id)


class YesNoQuestion(_QuestionBase):
    """A yes/no question: one tap.

    Questions with the same ``group`` are shown together as one checklist, each with the answer
    that excludes no one (see :mod:`flows.checklist`).
    """

    kind: Literal["yes_no"]
    group: str | None = Field(default=None, pattern=ID_PATTERN)


class ChoiceQuestion(_QuestionBase):
    """A single-choice question: one tap."""

    kind: Literal["choice"]
    options: tuple[Option, ...] = Field(min_length=2)

    @cached_property
    def numbered(self) -> bool:
        """Whether options may be picked by their position ("2" for the second).

        Not when a label is a number itself (ECOG 0-4): "3" would then mean two options.
        """
        return not any(
            o.id.strip().isdecimal() or o.text.en.strip().isdecimal() for o in self.options
        )


class NumberQuestion(_QuestionBase):
    """A number with a fixed unit (``years``, ``%``, ``kg``)."""

    kind: Literal["number"]
    unit: Literal["years", "%", "kg"]
    bounds: Bounds = Bounds()


class LabQuestion(_QuestionBase):
    """A laboratory value typed as printed, converted to the analyte's canonical unit.

    ``uln: true`` asks also for the laboratory's upper limit of normal (or accepts a direct
    multiple such as ``1.8× ULN``) because a criterion compares the value with a multiple of ULN.
    """

    kind: Literal["lab"]
    analyte: str
    uln: bool = False
    bounds: Bounds | None = None


Question = Annotated[
    YesNoQuestion | ChoiceQuestion | NumberQuestion | LabQuestion, Field(discriminator="kind")
]


# --- derived values, criteria and the protocol ------------------------------------------------


class Derived(Frozen):
    """A value the protocol computes from answers and never asks (``flows.formula``).

    ``formula`` is checked by ``prescreen protocol check``; ``method`` names it for readers
    ("Cockcroft–Gault").
    """

    id: str = Field(pattern=ID_PATTERN)
    short: Text
    unit: str
    formula: str
    method: Text | None = None

    @field_validator("formula")
    @classmethod
    def _parses(cls, formula: str) -> str:
        try:
            ast.parse(formula, mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"not a formula: {exc.msg}") from None
        return formula

    @cached_property
    def tree(self) -> ast.expr:
        """The formula, parsed (``flows.formula`` evaluates it node by node)."""
        return ast.parse(self.formula, mode="eval").body

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """The answers (or earlier derived values) the formula reads, in order."""
        calls = {id(node.func) for node in ast.walk(self.tree) if isinstance(node, ast.Call)}
        names = sorted(
            (
                node
                for node in ast.walk(self.tree)
                if isinstance(node, ast.Name) and id(node) not in calls
            ),
            key=lambda node: (node.lineno, node.col_offset),
        )
        return tuple(dict.fromkeys(node.id for node in names))


class Criterion(Frozen):
    """One eligibility criterion, with its number and wording exactly as in the protocol.

    For an inclusion criterion the rule says what must hold; for an exclusion criterion it says
    what excludes. ``applies_if`` makes the criterion not applicable when false (e.g. pregnancy
    testing for a woman of childbearing potential). ``overridable`` criteria are left to the
    investigator's decision instead of excluding the subject.
    """

    id: str
    number: str
    short: Text | None = None
    type: Literal["inclusion", "exclusion"]
    text: Text
    rule: Expr | None = None
    applies_if: Expr | None = None
    overridable: bool = False
    override_note: Text | None = None
    judged_by: Literal["investigator"] | None = None
    """The criterion is the investigator's judgement, recorded as their decision: no rule."""

    @model_validator(mode="after")
    def _rule_or_judgement(self) -> Self:
        if (self.rule is None) == (self.judged_by is None):
            raise ValueError("a criterion needs a rule, or judged_by: investigator, not both")
        return self

    @cached_property
    def questions(self) -> tuple[str, ...]:
        """Every question the criterion reads (its rule, then its applicability)."""
        refs = [
            q
            for rule in (self.rule, self.applies_if)
            if rule is not None
            for q in referenced_questions(rule)
        ]
        return tuple(dict.fromkeys(refs))

    def name(self, lang: Lang) -> str:
        """The criterion's number and short name when it has one: Criterion 7.1 · Creatinine."""
        word = "标准" if lang == "zh" else "Criterion"
        short = f" · {self.short.get(lang)}" if self.short else ""
        return f"{word} {self.number}{short}"

    @cached_property
    def verdict_memo(self) -> dict[tuple[Any, ...], Any]:
        """Verdicts already reached, by the values of :attr:`questions` (``flows.verdict``)."""
        return {}


class Protocol(Frozen):
    """A trial's eligibility screen."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str
    registry: str | None = None
    title: Text
    summary: Text | None = None
    questions: tuple[Question, ...] = Field(min_length=1)
    derived: tuple[Derived, ...] = ()
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @cached_property
    def digest(self) -> str:
        """SHA-256 over the canonical JSON of the validated content (formatting-independent)."""
        canonical = json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    @cached_property
    def questions_by_id(self) -> dict[str, Question]:
        """Questions keyed by id (the first, if an id is repeated: ``check`` reports it)."""
        by_id: dict[str, Question] = {}
        for q in self.questions:
            by_id.setdefault(q.id, q)
        return by_id

    @cached_property
    def question_index(self) -> dict[str, int]:
        """The position of each question in asking order (the first, if an id is repeated)."""
        index: dict[str, int] = {}
        for i, q in enumerate(self.questions):
            index.setdefault(q.id, i)
        return index

    @cached_property
    def criteria_by_id(self) -> dict[str, Criterion]:
        """Criteria keyed by id."""
        return {c.id: c for c in self.criteria}

    @cached_property
    def derived_by_id(self) -> dict[str, Derived]:
        """Derived values keyed by id."""
        return {d.id: d for d in self.derived}

    def answers_read(self, name: str) -> tuple[str, ...]:
        """The questions behind a name a rule reads: itself, or a derived value's inputs."""
        derived = self.derived_by_id.get(name)
        if derived is None:
            return (name,)
        return tuple(dict.fromkeys(q for i in derived.inputs for q in self.answers_read(i)))

    @cached_property
    def criteria_of_question(self) -> dict[str, tuple[str, ...]]:
        """The criteria each question serves.

        A criterion serves the questions its rule or applicability reads, directly or through
        a derived value.
        """
        served: dict[str, list[str]] = {q.id: [] for q in self.questions}
        for criterion in self.criteria:
            for name in criterion.questions:
                for qid in dict.fromkeys((name, *self.answers_read(name))):
                    served.setdefault(qid, []).append(criterion.id)
        return {qid: tuple(ids) for qid, ids in served.items()}

    @cached_property
    def limits(self) -> dict[tuple[str, str], tuple[Decimal, ...]]:
        """The numbers each question's answer is compared with, by ``(question, of)``.

        A number shown to a coordinator is rounded for reading but never across one of these
        (``flows.values.fmt_near``), so that it compares with each limit as the engine did.
        """
        found: dict[tuple[str, str], dict[Decimal, None]] = {}
        for criterion in self.criteria:
            rules = [r for r in (criterion.rule, criterion.applies_if) if r is not None]
            for compare in (c for rule in rules for c in comparisons(rule)):
                operand = compare.operand
                numbers = operand if compare.operator == "between" else (operand,)
                for number in numbers:
                    if isinstance(number, Decimal):
                        found.setdefault((compare.q, compare.of), {})[number] = None
        return {key: tuple(numbers) for key, numbers in found.items()}

    @property
    def label(self) -> str:
        """``id v<version>`` for lists and logs."""
        return f"{self.id} v{self.version}"
