"""What a screening use case returns: recorded, or why not, as values (never raised)."""

from __future__ import annotations

from dataclasses import dataclass

from flows import AnswerValue, Parsed, Step
from flows.dialog import Event
from flows.messages import Message
from storage.records import Screening


@dataclass(frozen=True, slots=True)
class Recorded:
    """The event was stored; ``echo`` is the normalised answer to show back."""

    screening: Screening
    result: Step
    echo: Message | None = None


@dataclass(frozen=True, slots=True)
class Reask:
    """The text could not be used: ask again with this hint."""

    hint: Message


@dataclass(frozen=True, slots=True)
class ConfirmFirst:
    """The value is possible but unusual: confirm before it is recorded."""

    question_id: str
    parsed: Parsed


@dataclass(frozen=True, slots=True)
class NeedsReason:
    """The answer changes an earlier known answer: a reason for change is required first."""

    question_id: str
    previous: AnswerValue
    value: AnswerValue
    echo: Message | None = None
    """The new value as read from typed text, normalised, to show back once recorded."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The dialog did not accept the event (an outdated question, nothing pending…)."""

    message: Message
    screening: Screening


@dataclass(frozen=True, slots=True)
class Conflict:
    """Someone else changed the screening first; here it is as it stands now."""

    screening: Screening


@dataclass(frozen=True, slots=True)
class Planned:
    """A step the engine has worked out, to be stored by :meth:`ScreeningService.store`.

    Working it out reads no database; storing it is one transaction. The bot does the first on
    its event loop and only the second in a database thread.
    """

    screening: Screening
    event: Event
    result: Step
    actor: int
    raw_text: str | None = None
    reason: str | None = None
    echo: Message | None = None


@dataclass(frozen=True, slots=True)
class AlreadyProcessed:
    """This update was handled before; nothing was recorded again."""


Outcome = Recorded | Reask | ConfirmFirst | NeedsReason | Refused | Conflict | AlreadyProcessed
