"""Laboratory analytes, their canonical units and the factors that convert typed units.

Units are matched after :func:`normalise_unit` folds case, spaces, micro signs, multiplication
signs and superscripts, so ``×10⁹/L``, ``x10^9/l`` and ``*10^9/L`` are the same key. Some keys
mean different things for different analytes (``G/L`` is giga-cells per litre for a count but
grams per litre for haemoglobin), so every analyte has its own table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from flows.schema import Bounds
from flows.text import Text

# Multiples of ULN above 20 are possible (fulminant hepatitis) but rare enough to confirm.
DEFAULT_RATIO_BOUNDS = Bounds(min=Decimal(0), max=Decimal(100), soft_max=Decimal(20))


@dataclass(frozen=True)
class Analyte:
    """A laboratory analyte: its name, canonical unit and accepted units."""

    key: str
    name: Text
    canonical: str
    # normalised unit key → factor that converts a value in that unit to the canonical unit
    units: Mapping[str, Decimal]
    # the unit a bare number is read in (the one the question's wording names)
    default_unit: str
    bounds: Bounds
    # how a unit is written back for the coordinator, by normalised key
    display: Mapping[str, str]
    ratio_bounds: Bounds = DEFAULT_RATIO_BOUNDS


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def normalise_unit(text: str) -> str:
    """Fold a typed unit to a lookup key (``×10⁹/L`` → ``x10^9/l``, ``/µL`` → ``/ul``)."""
    unit = text.strip().lower()
    unit = unit.replace("µ", "u").replace("μ", "u").replace("mc", "u")
    unit = re.sub(r"[×xX*·]\s*10", "x10", unit)
    unit = re.sub(
        r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", lambda m: "10^" + m.group(1).translate(_SUPERSCRIPTS), unit
    )
    unit = unit.translate(_SUPERSCRIPTS)
    unit = re.sub(r"\s+", "", unit)
    unit = unit.replace("cells/", "/").replace("iu/", "u/")
    if unit.startswith("10^"):
        unit = "x" + unit
    return unit


_ONE = Decimal(1)
_COUNT_UNITS = {
    "x10^9/l": _ONE,
    "g/l": _ONE,
    "/nl": _ONE,
    "x10^3/ul": _ONE,
    "k/ul": _ONE,
    "x10^3/mm3": _ONE,
    "/ul": Decimal("0.001"),
    "/mm3": Decimal("0.001"),
}
_COUNT_DISPLAY = {
    "x10^9/l": "×10⁹/L",
    "g/l": "G/L",
    "/nl": "/nL",
    "x10^3/ul": "×10³/µL",
    "k/ul": "K/µL",
    "x10^3/mm3": "×10³/mm³",
    "/ul": "/µL",
    "/mm3": "/mm³",
}

ANALYTES: Mapping[str, Analyte] = {
    a.key: a
    for a in (
        Analyte(
            key="hemoglobin",
            name=Text(en="Haemoglobin", zh="血红蛋白"),
            canonical="g/L",
            units={"g/l": _ONE, "g/dl": Decimal(10), "mmol/l": Decimal("16.11")},
            default_unit="g/l",
            bounds=Bounds(
                min=Decimal(15), max=Decimal(260), soft_min=Decimal(40), soft_max=Decimal(200)
            ),
            display={"g/l": "g/L", "g/dl": "g/dL", "mmol/l": "mmol/L"},
        ),
        Analyte(
            key="anc",
            name=Text(en="Absolute neutrophil count", zh="中性粒细胞绝对计数"),
            canonical="×10⁹/L",
            units=_COUNT_UNITS,
            default_unit="x10^9/l",
            bounds=Bounds(min=Decimal(0), max=Decimal(300), soft_max=Decimal(50)),
            display=_COUNT_DISPLAY,
        ),
        Analyte(
            key="platelets",
            name=Text(en="Platelet count", zh="血小板计数"),
            canonical="×10⁹/L",
            units=_COUNT_UNITS,
            default_unit="x10^9/l",
            bounds=Bounds(
                min=Decimal(0), max=Decimal(5000), soft_min=Decimal(5), soft_max=Decimal(1000)
            ),
            display=_COUNT_DISPLAY,
        ),
        Analyte(
            key="creatinine",
            name=Text(en="Creatinine", zh="肌酐"),
            canonical="µmol/L",
            units={"umol/l": _ONE, "mg/dl": Decimal("88.42"), "mmol/l": Decimal(1000)},
            default_unit="umol/l",
            bounds=Bounds(
                min=Decimal(5), max=Decimal(3000), soft_min=Decimal(20), soft_max=Decimal(1000)
            ),
            display={"umol/l": "µmol/L", "mg/dl": "mg/dL", "mmol/l": "mmol/L"},
        ),
        Analyte(
            key="bilirubin",
            name=Text(en="Total bilirubin", zh="总胆红素"),
            canonical="µmol/L",
            units={"umol/l": _ONE, "mg/dl": Decimal("17.1")},
            default_unit="umol/l",
            bounds=Bounds(
                min=Decimal(0), max=Decimal(1500), soft_min=Decimal(1), soft_max=Decimal(400)
            ),
            display={"umol/l": "µmol/L", "mg/dl": "mg/dL"},
        ),
        *(
            Analyte(
                key=key,
                name=name,
                canonical="U/L",
                units={"u/l": _ONE, "ukat/l": Decimal(60)},
                default_unit="u/l",
                bounds=Bounds(
                    min=Decimal(0), max=Decimal(30000), soft_min=Decimal(1), soft_max=Decimal(1500)
                ),
                display={"u/l": "U/L", "ukat/l": "µkat/L"},
            )
            for key, name in (
                ("alt", Text(en="ALT", zh="谷丙转氨酶 (ALT)")),
                ("ast", Text(en="AST", zh="谷草转氨酶 (AST)")),
            )
        ),
    )
}


def convert(analyte: Analyte, value: Decimal, unit_key: str) -> Decimal:
    """Convert ``value`` typed in ``unit_key`` to the analyte's canonical unit."""
    return value * analyte.units[unit_key]
