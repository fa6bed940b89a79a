"""Parsing what coordinators type into answer values.

Every function here is total: bad input yields an :class:`Invalid` carrying a hint to show the
coordinator, never an exception. Numbers are read as they appear on lab reports: decimal commas,
thousands separators, units in many spellings, ULN given as a value or as a multiple.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flows.messages import Message, msg
from flows.schema import Bounds, ChoiceQuestion, LabQuestion, NumberQuestion, Question
from flows.units import ANALYTES, Analyte, convert, normalise_unit
from flows.values import (
    UNKNOWN,
    AnswerValue,
    LabResult,
    Quantity,
    fmt_decimal,
    fmt_near,
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A successfully read answer.

    Attributes:
        value: The normalised value.
        echo: What to show back ("9.5 g/dL = 95 g/L").
        confirm: Set when the value is possible but unusual: ask before recording it.
    """

    value: AnswerValue
    echo: Message
    confirm: Message | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """Input that could not be used, with a hint for re-asking."""

    hint: Message


ParseResult = Parsed | Invalid

_UNKNOWN_WORDS = frozenset(
    {
        "unknown",
        "unk",
        "pending",
        "?",
        "not done",
        "not known",
        "not available",
        "na",
        "未知",
        "待定",
        "不详",
        "未做",
        "未查",
    }
)
_YES = frozenset({"yes", "y", "true", "是", "是的", "有", "对"})
_NO = frozenset({"no", "n", "false", "否", "不", "不是", "没有", "无"})

_NUMBER = re.compile(
    r"^\s*(?P<num>[-+−]?(?:\d{1,3}(?:[ \u00a0\u202f']\d{3})+|\d+)(?:[.,]\d+)?|[-+−]?[.,]\d+)"
    r"\s*(?P<rest>.*?)\s*$",
    re.DOTALL,
)
_RATIO = re.compile(r"^(?:[x×*]\s*)?(?:uln|倍\s*(?:uln)?)$")
_ULN_SPLIT = re.compile(
    r"[,;(]?\s*(?:\buln\b|upper limit(?: of normal)?|正常值上限|上限)\s*[:=]?\s*"
)
_RANGE = re.compile(
    r"^(?P<unit>[^()\[\]]*?)\s*[(\[]\s*(?:ref\.?\s*)?[-+]?[\d.,]+\s*[-–~]\s*(?P<high>[\d.,]+)"
    r"\s*(?P<unit2>[^()\[\]]*?)\s*[)\]]$"
)


def with_unit(number: Decimal, unit: str) -> str:
    """``95 g/L``, ``1200/µL``, ``55 %``: a number with its unit as a lab report prints it."""
    sep = "" if unit.startswith("/") else " "
    return f"{fmt_decimal(number)}{sep}{unit}"


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def is_unknown(text: str) -> bool:
    """Whether the coordinator typed a word meaning "unknown / pending"."""
    return _fold(text).rstrip(".!") in _UNKNOWN_WORDS


def read_number(text: str) -> tuple[Decimal, str] | Invalid:
    """Read a leading number and return it with the rest of the text (the unit).

    Accepts ``1,2`` (decimal comma), ``1 200`` (thousands separated by spaces) and a minus sign
    in either spelling. ``1,200`` is refused as ambiguous, since both readings occur on reports.
    """
    match = _NUMBER.match(text)
    if match is None:
        return Invalid(msg("not_a_number", text=text.strip()[:40], example="9.5"))
    raw = match["num"].replace("−", "-")
    digits = re.sub(r"[ \u00a0\u202f']", "", raw)
    if "," in digits:
        whole, _, frac = digits.partition(",")
        if len(frac) == 3 and whole.lstrip("+-") not in {"", "0"}:
            return Invalid(
                msg("ambiguous_separator", text=raw, a=whole + frac, b=f"{whole}.{frac}")
            )
        digits = f"{whole}.{frac}"
    try:
        number = Decimal(digits)
    except InvalidOperation:
        return Invalid(msg("not_a_number", text=text.strip()[:40], example="9.5"))
    return number, match["rest"]


def _bounds_check(
    value: Decimal, bounds: Bounds, what: str, shown: str
) -> Invalid | Message | None:
    """Refuse impossible values; return a confirmation message for unusual ones."""
    low, high = bounds.min, bounds.max
    if (low is not None and value < low) or (high is not None and value > high):
        return Invalid(
            msg(
                "impossible",
                value=shown,
                what=what,
                low=fmt_decimal(low) if low is not None else "−∞",
                high=fmt_decimal(high) if high is not None else "∞",
            )
        )
    if (bounds.soft_min is not None and value < bounds.soft_min) or (
        bounds.soft_max is not None and value > bounds.soft_max
    ):
        return msg("unusual", value=shown, what=what)
    return None


def _parse_yes_no(text: str) -> ParseResult:
    word = _fold(text).rstrip(".!")
    if word in _YES:
        return Parsed(True, msg("yes"))
    if word in _NO:
        return Parsed(False, msg("no"))
    return Invalid(msg("yes_no"))


def _parse_choice(question: ChoiceQuestion, text: str) -> ParseResult:
    word = _fold(text)
    labels = [
        (opt, {opt.id.lower(), opt.text.en.lower(), (opt.text.zh or "").lower()})
        for opt in question.options
    ]
    for opt, names in labels:
        if word in names:
            return Parsed(opt.id, msg("echo", normalised=opt.text.en))
    if question.numbered and word.isdecimal() and 1 <= int(word) <= len(question.options):
        opt = question.options[int(word) - 1]
        return Parsed(opt.id, msg("echo", normalised=opt.text.en))
    prefixed = [
        opt for opt, names in labels if word and any(n.startswith(word) for n in names if n)
    ]
    if len(prefixed) == 1:
        return Parsed(prefixed[0].id, msg("echo", normalised=prefixed[0].text.en))
    return Invalid(msg("choice", options=", ".join(o.text.en for o in question.options)))


_NUMBER_UNITS = {
    "years": {"", "y", "yr", "yrs", "year", "years", "岁", "周岁"},
    "%": {"", "%", "percent", "pct"},
    "kg": {"", "kg", "kgs", "公斤", "千克"},
}


def _parse_number(question: NumberQuestion, text: str) -> ParseResult:
    read = read_number(text)
    if isinstance(read, Invalid):
        return read
    number, rest = read
    if _fold(rest) not in _NUMBER_UNITS[question.unit]:
        return Invalid(
            msg("unknown_unit", unit=rest, analyte=question.label.en, units=question.unit)
        )
    shown = with_unit(number, question.unit)
    checked = _bounds_check(number, question.bounds, question.label.en, shown)
    if isinstance(checked, Invalid):
        return checked
    return Parsed(Quantity(number, question.unit), msg("echo", normalised=shown), checked)


def _unit_key(analyte: Analyte, unit_text: str) -> str | None:
    key = normalise_unit(unit_text) if unit_text.strip() else analyte.default_unit
    return key if key in analyte.units else None


def _unknown_unit(analyte: Analyte, unit_text: str) -> Invalid:
    return Invalid(
        msg(
            "unknown_unit",
            unit=unit_text.strip(),
            analyte=analyte.name.en,
            units=", ".join(dict.fromkeys(analyte.display.values())),
        )
    )


def _suggest_unit(analyte: Analyte, number: Decimal) -> str | None:
    """For a bare number impossible in the default unit, name a unit in which it is plausible."""
    b = analyte.bounds
    for key, factor in analyte.units.items():
        value = number * factor
        low = b.soft_min if b.soft_min is not None else b.min
        high = b.soft_max if b.soft_max is not None else b.max
        if (low is None or value >= low) and (high is None or value <= high):
            return with_unit(number, analyte.display[key])
    return None


def _read_lab_value(analyte: Analyte, text: str) -> tuple[Decimal, str, Decimal, str] | Invalid:
    """Read ``number unit`` → (typed number, unit key, canonical value, remainder)."""
    read = read_number(text)
    if isinstance(read, Invalid):
        return read
    number, rest = read
    # A reference range printed after the value: "1.1 mg/dL (0.6-1.2)".
    unit_text, remainder = rest, ""
    ranged = _RANGE.match(rest)
    if ranged:
        unit_text = ranged["unit"]
        remainder = f"uln {ranged['high']} {ranged['unit2'] or ranged['unit']}"
    key = _unit_key(analyte, unit_text)
    if key is None:
        return _unknown_unit(analyte, unit_text)
    return number, key, convert(analyte, number, key), remainder


def _parse_lab(
    question: LabQuestion, text: str, limits: Sequence[Decimal], value_limits: Sequence[Decimal]
) -> ParseResult:
    analyte = ANALYTES[question.analyte]
    bounds = question.bounds or analyte.bounds
    folded = _fold(text)

    # "1.8x ULN", "1.8 × ULN", "1.8倍": the multiple of ULN typed directly.
    read = read_number(folded)
    if not isinstance(read, Invalid) and _RATIO.match(read[1]):
        if not question.uln:
            # The criterion reads the value itself (a clearance formula, an absolute limit): a
            # multiple of the upper limit of normal has no value to give it.
            units = ", ".join(dict.fromkeys(analyte.display.values()))
            return Invalid(msg("value_not_ratio", analyte=analyte.name.en, units=units))
        ratio = read[0]
        shown = f"{fmt_decimal(ratio)}× ULN"
        checked = _bounds_check(ratio, analyte.ratio_bounds, analyte.name.en, shown)
        if isinstance(checked, Invalid):
            return checked
        value = LabResult(analyte.key, None, None, None, ratio)
        return Parsed(value, msg("echo", normalised=shown), checked)

    parts = _ULN_SPLIT.split(folded, maxsplit=1)
    first = _read_lab_value(analyte, parts[0])
    if isinstance(first, Invalid):
        return first
    number, key, canonical, remainder = first
    uln_text = (parts[1] if len(parts) > 1 else remainder.removeprefix("uln ")).strip(" )]")

    unit_shown = analyte.display[key]
    raw_shown = with_unit(number, unit_shown)
    canonical_shown = with_unit(canonical, analyte.canonical)
    # Echoed for reading: three significant digits ("79.6 µmol/L", not "79.578"), never
    # across a limit; the value itself is kept exactly.
    readable = Decimal(fmt_near(canonical, value_limits, max(0, 3 - len(str(int(canonical))))))
    checked = _bounds_check(canonical, bounds, analyte.name.en, canonical_shown)
    if isinstance(checked, Invalid):
        typed_unit = parts[0][len(parts[0].rstrip()) :]
        suggestion = _suggest_unit(analyte, number) if not re.search(r"[a-z/%]", parts[0]) else None
        if suggestion and not typed_unit:
            return Invalid(
                msg(
                    "impossible_hint_unit",
                    value=fmt_decimal(number),
                    what=analyte.name.en,
                    unit=unit_shown,
                    suggestion=suggestion,
                )
            )
        return checked

    uln: Decimal | None = None
    if uln_text.strip():
        uln_read = _read_lab_value(
            analyte, uln_text if re.search(r"[a-z/]", uln_text) else f"{uln_text} {unit_shown}"
        )
        if isinstance(uln_read, Invalid):
            return uln_read
        uln = uln_read[2]
        if uln <= 0:
            return Invalid(msg("uln_not_positive"))
    elif question.uln:
        return Invalid(msg("uln_needed", example=raw_shown, uln="1.2"))

    value = LabResult(analyte.key, canonical, analyte.canonical, uln)
    normalised = with_unit(readable, analyte.canonical)
    if value.ratio is not None:
        normalised += f" ({fmt_near(value.ratio, limits)}× ULN)"
    if key == normalise_unit(analyte.canonical):
        echo = msg("echo", normalised=normalised)
    else:
        echo = msg("echo_converted", raw=raw_shown, normalised=normalised)
    return Parsed(value, echo, checked)


def parse_answer(
    question: Question,
    text: str,
    limits: Sequence[Decimal] = (),
    value_limits: Sequence[Decimal] = (),
) -> ParseResult:
    """Read a typed answer for ``question``.

    Args:
        question: The question being answered.
        text: What the coordinator typed.
        limits: The multiples of ULN the protocol compares the answer with
            (``Protocol.limits``): the echo never rounds across one.
        value_limits: The values it compares the answer with, likewise.

    Returns:
        :class:`Parsed` with the normalised value and an echo, or :class:`Invalid` with a hint.
    """
    if not text.strip():
        return Invalid(msg("empty"))
    if is_unknown(text):
        return Parsed(UNKNOWN, msg("unknown_answer"))
    result = _parse_as(question, text, limits, value_limits)
    if isinstance(result, Invalid) and result.hint.key == "ambiguous_separator":
        return _ambiguous(question, text, result.hint, limits, value_limits)
    return result


def _parse_as(
    question: Question, text: str, limits: Sequence[Decimal], value_limits: Sequence[Decimal]
) -> ParseResult:
    match question:
        case ChoiceQuestion():
            return _parse_choice(question, text)
        case NumberQuestion():
            return _parse_number(question, text)
        case LabQuestion():
            return _parse_lab(question, text, limits, value_limits)
    return _parse_yes_no(text)


def _ambiguous(
    question: Question,
    text: str,
    hint: Message,
    limits: Sequence[Decimal],
    value_limits: Sequence[Decimal],
) -> Invalid:
    """Offer the readings of ``1,200`` that this question accepts, and only those.

    A bare ``1200`` is refused for ANC (a count in ×10⁹/L cannot be 1200), so the hint offers
    ``1200/µL`` instead, which is accepted.
    """
    match = _NUMBER.match(text)
    rest = match["rest"] if match else ""
    offered: list[str] = []
    for number in (hint.params["a"], hint.params["b"]):
        candidate = f"{number}{'' if not rest or rest.startswith('/') else ' '}{rest}"
        result = _parse_as(question, candidate, limits, value_limits)
        if isinstance(result, Parsed):
            offered.append(candidate)
        elif result.hint.key == "impossible_hint_unit":
            offered.append(result.hint.params["suggestion"])
    if len(offered) == 2:
        return Invalid(
            msg("ambiguous_separator", text=hint.params["text"], a=offered[0], b=offered[1])
        )
    if len(offered) == 1:
        return Invalid(msg("ambiguous_one", text=hint.params["text"], a=offered[0]))
    return Invalid(msg("not_a_number", text=text.strip()[:40], example="9.5"))
