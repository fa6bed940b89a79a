"""Answer values written as text: for the record, for explanations, for people.

Every place that shows or stores a value as words uses one of these three functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from flows.catalogue import tr
from flows.schema import ChoiceQuestion, Protocol
from flows.text import Lang
from flows.values import AnswerValue, LabResult, Quantity, Unknown, fmt_decimal, fmt_near


def format_value(value: AnswerValue) -> str:
    """Write a value as text that :func:`parse_answer` reads back to the same value."""
    match value:
        case Unknown():
            return "unknown"
        case bool():
            return "yes" if value else "no"
        case str():
            return value
        case Quantity():
            return (
                fmt_decimal(value.value)
                if value.unit == "years"
                else f"{fmt_decimal(value.value)} {value.unit}"
            )
        case LabResult():
            if value.value is None:
                return f"{fmt_decimal(value.direct_ratio or Decimal(0))}x ULN"
            text = f"{fmt_decimal(value.value)} {value.unit}"
            if value.uln is not None:
                text += f" ULN {fmt_decimal(value.uln)} {value.unit}"
            return text
    raise TypeError(f"not an answer value: {value!r}")


def format_actual(
    value: AnswerValue | None, of: str = "value", limits: Sequence[Decimal] = ()
) -> str | None:
    """An answer as shown in explanations (canonical units, ratio for ULN comparisons).

    A ratio is rounded for reading but never across one of ``limits`` (``fmt_near``).
    """
    match value:
        case None:
            return None
        case Unknown():
            return "unknown"
        case bool():
            return "yes" if value else "no"
        case str():
            return value
        case Quantity():
            return f"{fmt_decimal(value.value)} {value.unit}"
        case LabResult():
            if of == "uln":
                ratio = value.ratio
                return None if ratio is None else f"{fmt_near(ratio, limits, 3)}× ULN"
            return None if value.value is None else f"{fmt_decimal(value.value)} {value.unit}"
    return str(value)


def answer_text(protocol: Protocol, question_id: str, value: AnswerValue | None, lang: Lang) -> str:
    """An answer as a coordinator would say it: option labels, yes/no, units."""
    question = protocol.questions_by_id.get(question_id)
    match value:
        case None:
            return tr("not_answered", lang)
        case Unknown():
            return tr("value_unknown", lang)
        case bool():
            return tr("value_yes" if value else "value_no", lang)
        case str() if isinstance(question, ChoiceQuestion):
            option = next((o for o in question.options if o.id == value), None)
            return option.text.get(lang) if option else value
    derived = protocol.derived_by_id.get(question_id)
    if derived is not None and isinstance(value, Quantity):
        limits = protocol.limits.get((question_id, "value"), ())
        return f"{fmt_near(value.value, limits, 1)} {value.unit}"
    text = format_actual(value)
    ratio = None
    if isinstance(value, LabResult):
        ratio = format_actual(value, "uln", protocol.limits.get((question_id, "uln"), ()))
    if ratio and text:
        return f"{text} ({ratio})"
    return ratio or text or "?"
