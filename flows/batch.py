"""Several labelled values in one message: ``Hb 9.5 g/dL, ANC 1200/µL, PLT 150``.

Lab reports are read in one go; typing them in one message saves the coordinator a message per
value. Labels are a question's id, its short names and its ``aliases``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from flows.messages import msg
from flows.parsing import Invalid, ParseResult, parse_answer
from flows.schema import LabQuestion, NumberQuestion, Protocol, Question

_LABELS: dict[str, tuple[re.Pattern[str], dict[str, str]]] = {}


def _labels(protocol: Protocol) -> tuple[re.Pattern[str], dict[str, str]]:
    cached = _LABELS.get(protocol.digest)
    if cached is not None:
        return cached
    names: dict[str, str] = {}
    for question in protocol.questions:
        if not isinstance(question, LabQuestion | NumberQuestion):
            continue
        candidates = {question.id, question.id.replace("_", " "), *question.aliases}
        if question.short:
            candidates |= {question.short.en, question.short.zh or ""}
        for name in candidates:
            if name:
                names.setdefault(name.lower(), question.id)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # A label stands alone: not inside a word or a unit ("g/dL" must not match "dl").
    pattern = re.compile(rf"(?<![\w/])({alternatives})(?![\w/])\s*[:=]?\s*", re.IGNORECASE)
    _LABELS[protocol.digest] = (pattern, names)
    return pattern, names


def labelled(protocol: Protocol, text: str) -> tuple[str, str, str] | None:
    """A single value typed with its label, as copied from a report: ``Hb 9.5 g/dL``.

    Returns:
        ``(question_id, label as typed, the value after it)``, or ``None`` when the text does
        not start with a label.
    """
    pattern, names = _labels(protocol)
    match = pattern.match(text.strip())
    if match is None:
        return None
    return names[match.group(1).lower()], match.group(1), text.strip()[match.end() :]


def _limits(protocol: Protocol, qid: str) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    """The multiples of ULN and the values the protocol compares a question's answer with."""
    return protocol.limits.get((qid, "uln"), ()), protocol.limits.get((qid, "value"), ())


def read_answer(protocol: Protocol, question: Question, text: str) -> ParseResult:
    """Read a typed answer to ``question``, with or without its label in front.

    "Hb 9.5 g/dL" at the haemoglobin question is 9.5 g/dL. A label naming another question at
    a question that takes a number is refused naming both, so a value is never recorded for
    the wrong analyte.
    """
    limits = _limits(protocol, question.id)
    found = labelled(protocol, text) if isinstance(question, LabQuestion | NumberQuestion) else None
    if found is None:
        return parse_answer(question, text, *limits)
    qid, label, rest = found
    if qid != question.id:
        other = protocol.questions_by_id[qid].label.en
        return Invalid(msg("other_label", label=label, other=other, question=question.label.en))
    return parse_answer(question, rest, *limits)


def parse_batch(protocol: Protocol, text: str) -> list[tuple[str, str, ParseResult]] | None:
    """Split a message into labelled values and parse each for its question.

    Returns:
        ``(question_id, typed text, result)`` in protocol order, or ``None`` unless the message
        starts with a label and holds at least two (a single value is an ordinary answer).
    """
    pattern, names = _labels(protocol)
    matches = list(pattern.finditer(text))
    if len(matches) < 2 or text[: matches[0].start()].strip(" ,;\n"):
        return None
    found: dict[str, tuple[str, ParseResult]] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[match.end() : end].strip().strip(",;").strip()
        qid = names[match.group(1).lower()]
        parsed = parse_answer(protocol.questions_by_id[qid], value, *_limits(protocol, qid))
        found[qid] = (value, parsed)
    order = protocol.question_index
    return [
        (qid, raw, result)
        for qid, (raw, result) in sorted(found.items(), key=lambda item: order[item[0]])
    ]
