"""Answer values: what a parsed answer is, independent of how it was typed or stored."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Unknown:
    """The answer is not known yet (test not done, result pending)."""


UNKNOWN: Final = Unknown()


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number in the question's canonical unit (``years``, ``%``…)."""

    value: Decimal
    unit: str


@dataclass(frozen=True, slots=True)
class LabResult:
    """A laboratory value normalised to the analyte's canonical unit.

    Either ``value`` (with ``uln`` when the lab's upper limit of normal was given) or only
    ``ratio`` (when the coordinator typed a multiple of ULN directly) is present.
    """

    analyte: str
    value: Decimal | None
    unit: str | None
    uln: Decimal | None = None
    direct_ratio: Decimal | None = None

    @property
    def ratio(self) -> Decimal | None:
        """The value as a multiple of the upper limit of normal, when it can be known."""
        if self.direct_ratio is not None:
            return self.direct_ratio
        if self.value is not None and self.uln:
            return self.value / self.uln
        return None


AnswerValue = bool | str | Quantity | LabResult | Unknown


def fmt_decimal(value: Decimal) -> str:
    """Format a decimal without exponent or trailing zeros (``95``, ``1.2``, ``0.001``)."""
    text = f"{value.normalize():f}"
    return "0" if text in {"-0", ""} else text


def fmt_near(value: Decimal, limits: Iterable[Decimal] = (), places: int = 2) -> str:
    """A number rounded for reading, but never across (or onto) a limit it is compared with.

    ``2.0004`` near the limit 2 is shown as ``2.0004``, not ``2``: "2× ULN" beside "required
    ≤ 2× ULN" would contradict the exclusion it explains. Rounding is half up, as people round.

    Args:
        value: The exact number.
        limits: The numbers it is compared with.
        places: Decimal places when no limit is in the way.
    """
    limits = tuple(limits)
    for digits in range(places, 12):
        try:
            shown = value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # more digits than a decimal holds: nothing to round
            return fmt_decimal(value)
        if all(
            (shown > limit) - (shown < limit) == (value > limit) - (value < limit)
            for limit in limits
        ):
            return fmt_decimal(shown)
    return fmt_decimal(value)


def value_to_json(value: AnswerValue) -> dict[str, Any]:
    """Encode an answer value as JSON-compatible data (decimals as strings, exactly)."""
    match value:
        case Unknown():
            return {"type": "unknown"}
        case bool():
            return {"type": "bool", "value": value}
        case str():
            return {"type": "choice", "value": value}
        case Quantity():
            return {"type": "quantity", "value": fmt_decimal(value.value), "unit": value.unit}
        case LabResult():
            return {
                "type": "lab",
                "analyte": value.analyte,
                "value": None if value.value is None else fmt_decimal(value.value),
                "unit": value.unit,
                "uln": None if value.uln is None else fmt_decimal(value.uln),
                "ratio": None if value.direct_ratio is None else fmt_decimal(value.direct_ratio),
            }
    raise TypeError(f"not an answer value: {value!r}")


def _dec(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


def value_from_json(data: dict[str, Any]) -> AnswerValue:
    """Decode what :func:`value_to_json` produced."""
    kind = data["type"]
    if kind == "unknown":
        return UNKNOWN
    if kind == "bool":
        return bool(data["value"])
    if kind == "choice":
        return str(data["value"])
    if kind == "quantity":
        return Quantity(Decimal(str(data["value"])), str(data["unit"]))
    if kind == "lab":
        return LabResult(
            analyte=str(data["analyte"]),
            value=_dec(data.get("value")),
            unit=data.get("unit"),
            uln=_dec(data.get("uln")),
            direct_ratio=_dec(data.get("ratio")),
        )
    raise ValueError(f"unknown answer type {kind!r}")
