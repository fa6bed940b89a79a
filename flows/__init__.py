"""The screening engine: protocols as data, answer parsing, rule evaluation and the dialog.

Pure code: no Telegram, no database, no I/O beyond loading a protocol file.
"""

from flows.dialog import (
    Answer,
    AnswerRecorded,
    AnswerRetired,
    Change,
    CompletePending,
    Decide,
    DecisionRecorded,
    DecisionWithdrawn,
    Event,
    GoBack,
    ScreeningState,
    Step,
    current_question,
    progress,
    start,
    step,
    verdict_of,
)
from flows.loader import Catalog, ProtocolError, load_catalog, load_protocol
from flows.parsing import Invalid, Parsed, parse_answer
from flows.schema import Criterion, Protocol, Question
from flows.showing import format_value
from flows.values import UNKNOWN, AnswerValue, LabResult, Quantity, Unknown
from flows.verdict import CriterionVerdict, Decision, Outcome, Status, Verdict

__all__ = [
    "UNKNOWN",
    "Answer",
    "AnswerRecorded",
    "AnswerRetired",
    "AnswerValue",
    "Catalog",
    "Change",
    "CompletePending",
    "Criterion",
    "CriterionVerdict",
    "Decide",
    "Decision",
    "DecisionRecorded",
    "DecisionWithdrawn",
    "Event",
    "GoBack",
    "Invalid",
    "LabResult",
    "Outcome",
    "Parsed",
    "Protocol",
    "ProtocolError",
    "Quantity",
    "Question",
    "ScreeningState",
    "Status",
    "Step",
    "Unknown",
    "Verdict",
    "current_question",
    "format_value",
    "load_catalog",
    "load_protocol",
    "parse_answer",
    "progress",
    "start",
    "step",
    "verdict_of",
]
