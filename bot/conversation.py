"""What a coordinator's chat is in the middle of: typed, and kept in our database.

A chat is in one phase at a time: nothing in particular, waiting for a screening code, holding
a value for confirmation or for a reason for change, waiting for a typed reason, holding a lab
panel until it is recorded, or showing an investigator a review. Values typed ahead in one
message wait beside the phase for their questions. Everything is stored on the staff member's
row whenever it changes (:meth:`storage.repository.Repository.save_conversation`), so that a
restart, or another bot process, continues where the chat stood.

Held values are kept parsed (:class:`Held`), never re-read from the text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError

from flows.text import Lang
from flows.values import AnswerValue, value_from_json, value_to_json
from storage.records import Screening

StoredValue = Annotated[
    AnswerValue,
    # Stored as value_to_json's form; given as the value itself when held.
    PlainValidator(lambda v: value_from_json(v) if isinstance(v, dict) else v),
    PlainSerializer(value_to_json),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Held(_Frozen):
    """An answer parsed and waiting: for confirmation (an unusual value) or a reason."""

    screening_id: int
    revision: int
    question_id: str
    value: StoredValue
    raw: str
    """What was typed, or ``[tap] label`` for a button: recorded as the answer's raw text."""
    echo: str | None = None
    """The value as it was shown back, normalised."""


class Typed(_Frozen):
    """One value of a lab panel typed in one message: read, shown back, not yet recorded."""

    raw: str
    value: StoredValue
    echo: str


class _OnScreening(_Frozen):
    screening_id: int
    revision: int

    def but(self, **changes: Any) -> Any:
        """A copy with some fields changed."""
        return self.model_copy(update=changes)

    def about(self, screening: Screening) -> bool:
        """Whether this phase still concerns ``screening`` as it stands."""
        return self.screening_id == screening.id and self.revision == screening.row_version


class Idle(_Frozen):
    """Nothing pending: typed text answers the current question."""

    kind: Literal["idle"] = "idle"


class ChoosingTrial(_Frozen):
    """``/new`` with several trials active: the trials are being chosen (the code may be given)."""

    kind: Literal["choosing_trial"] = "choosing_trial"
    code: str | None = None
    left_out: tuple[str, ...] = ()
    """The trials the coordinator unticked (by id): every active trial is ticked at first."""


class AwaitingCode(_Frozen):
    """``/new`` asked for the screening code; the next text is the code."""

    kind: Literal["awaiting_code"] = "awaiting_code"
    protocol_digest: str
    also: tuple[str, ...] = ()
    """The other trials screened in the same pass (their protocol digests), if any."""


class Confirming(_Frozen):
    """An unusual value waits for ✔ Record or ✏️ Retype."""

    kind: Literal["confirming"] = "confirming"
    held: Held


class ChoosingReason(_Frozen):
    """A changed answer waits for the reason for the change (buttons)."""

    kind: Literal["choosing_reason"] = "choosing_reason"
    held: Held


class TypingReason(_Frozen):
    """The reason "Other" was chosen: the next text is the reason for the change."""

    kind: Literal["typing_reason"] = "typing_reason"
    held: Held


Closing = Literal["cancelled", "not_completed"]
"""The ways of closing a screening that need a reason typed."""


class ClosingReason(_OnScreening):
    """Cancelling, or closing as not completed: the next text is the reason."""

    kind: Literal["closing_reason"] = "closing_reason"
    close: Closing


class DecisionReason(_OnScreening):
    """An investigator tapped Approve or Reject: the next text is the reason."""

    kind: Literal["decision_reason"] = "decision_reason"
    criterion_id: str
    approve: bool


class PanelHeld(_OnScreening):
    """Several values typed in one message, shown back, waiting for ✔ Record."""

    kind: Literal["panel_held"] = "panel_held"
    items: tuple[tuple[str, Typed], ...]
    """``(question id, value)`` in protocol order."""


CHECKLIST_MARK = "[checklist]"
"""How an answer given by checklist begins its recorded text: ``[checklist] yes``."""

Mark = Literal["y", "n", "u"]
"""A checklist item's answer: yes, no, unknown."""


class ChecklistHeld(_OnScreening):
    """A checklist shown, its answers not recorded yet (an item may be changed first)."""

    kind: Literal["checklist"] = "checklist"
    marks: dict[str, Mark]
    """The answer of each item, by question id, in the checklist's order."""
    editing: bool = False
    """Whether the items are shown one button each, to change their answers."""


class Reviewing(_Frozen):
    """An investigator looks at a review: typed text is pointed to the buttons."""

    kind: Literal["reviewing"] = "reviewing"
    screening_id: int


Phase = Annotated[
    Idle
    | ChoosingTrial
    | AwaitingCode
    | Confirming
    | ChoosingReason
    | TypingReason
    | ClosingReason
    | DecisionReason
    | PanelHeld
    | ChecklistHeld
    | Reviewing,
    Field(discriminator="kind"),
]


class Prefill(_Frozen):
    """Values typed ahead in one message, recorded as their questions come up."""

    screening_id: int
    items: dict[str, Typed]


class Conversation(_Frozen):
    """A chat's state beside the screening's: its phase, values typed ahead, its language."""

    version: Literal[1] = 1
    phase: Phase = Idle()
    prefill: Prefill | None = None
    lang: Lang | None = None

    def to_json(self) -> str:
        """The stored form."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, data: str | None) -> Conversation:
        """The stored form read back; what cannot be read (an older form) starts afresh."""
        if not data:
            return cls()
        try:
            return cls.model_validate_json(data)
        except ValidationError:
            return cls()

    def but(self, **changes: Any) -> Conversation:
        """A copy with some fields changed."""
        return self.model_copy(update=changes)


__all__ = [
    "CHECKLIST_MARK",
    "AwaitingCode",
    "ChecklistHeld",
    "ChoosingReason",
    "ChoosingTrial",
    "Closing",
    "ClosingReason",
    "Confirming",
    "Conversation",
    "DecisionReason",
    "Held",
    "Idle",
    "Mark",
    "PanelHeld",
    "Phase",
    "Prefill",
    "Reviewing",
    "Typed",
    "TypingReason",
]
