"""Callback data of inline buttons: which screening, which revision, what was chosen.

Every button carries the screening id and its row version, so a tap on a button from an older
message can be recognised and refused. Encoded as ``<version><action>|screening|revision|argument``
to stay within Telegram's 64 bytes; the leading version changes whenever the encoding does, so
buttons left in chats by an older release are refused as outdated instead of misread.

Callback data is input like any other: a client can send any 64 bytes. :func:`decode` accepts
only what :meth:`Callback.encode` can produce for a known action, so that a handler never
indexes, converts or stores a value it has not checked the form of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAX_BYTES = 64

VERSION = "1"
"""The encoding's version, the first character of every button's data."""

MAX_ID = 2**63 - 1
"""Database ids are 64-bit signed integers: a larger number cannot name a row."""


class Action(StrEnum):
    """What a button does."""

    ANSWER = "a"  # arg: question index ":" y | n | u | o<option index>
    PREVIOUS = "p"  # arg: question index of the screen
    GO_TO = "g"  # arg: question index to change
    CORRECT = "k"  # list the answers to correct one
    RECORD = "v"  # arg: one | batch (record the values waiting for confirmation)
    RETYPE = "w"  # drop the values waiting for confirmation
    REASON = "r"  # arg: quick reason index, or "o" to type one
    CONFIRM_EXCLUSION = "x"
    SIGN = "s"
    RESULTS = "c"  # results of pending questions arrived
    NOT_COMPLETED = "n"  # close as not completed (asks for the reason)
    DECIDE = "d"  # arg: criterion index ":" a | r
    OPEN = "m"  # make the screening current (from /resume)
    REVIEW = "o"  # open the review screen (from /review)
    LANGUAGE = "l"  # arg: en | zh
    TRIAL = "t"  # arg: index of the trial chosen for /new
    CHECK = "h"  # arg: question index of a checklist item whose answer to change
    CHECKED = "j"  # record the checklist's answers
    CHECKLIST = "e"  # show the checklist's items one button each, to change one
    REMIND = "b"  # arg: days until a reminder of the pending results


_INDEX = r"\d{1,4}"
_ARGS: dict[Action, re.Pattern[str]] = {
    Action.ANSWER: re.compile(rf"{_INDEX}:(?:y|n|u|o\d{{1,3}})"),
    Action.PREVIOUS: re.compile(_INDEX),
    Action.GO_TO: re.compile(_INDEX),
    Action.CORRECT: re.compile(""),
    Action.RECORD: re.compile("one|batch"),
    Action.RETYPE: re.compile(""),
    Action.REASON: re.compile(r"\d|o"),
    Action.CONFIRM_EXCLUSION: re.compile(""),
    Action.SIGN: re.compile(""),
    Action.RESULTS: re.compile(""),
    Action.NOT_COMPLETED: re.compile(""),
    Action.DECIDE: re.compile(rf"{_INDEX}:[ar]"),
    Action.OPEN: re.compile(""),
    Action.REVIEW: re.compile(""),
    Action.LANGUAGE: re.compile("en|zh"),
    Action.TRIAL: re.compile(r"\d{1,3}|go"),
    Action.CHECK: re.compile(_INDEX),
    Action.CHECKED: re.compile(""),
    Action.CHECKLIST: re.compile(""),
    Action.REMIND: re.compile("[137]"),
}
_ID = re.compile(r"0|[1-9]\d{0,18}")


@dataclass(frozen=True, slots=True)
class Callback:
    """A decoded button press."""

    action: Action
    screening_id: int
    revision: int
    arg: str = ""

    def encode(self) -> str:
        """The callback_data string."""
        data = f"{VERSION}{self.action.value}|{self.screening_id}|{self.revision}|{self.arg}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def index(self) -> int:
        """The leading number of the argument (a question, criterion or trial index)."""
        return int(self.arg.partition(":")[0])

    @property
    def choice(self) -> str:
        """What follows the index in the argument (``y``, ``o2``, ``a``…), else ``""``."""
        return self.arg.partition(":")[2]


def _number(text: str) -> int | None:
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def decode(data: str | None) -> Callback | None:
    """Parse callback_data; ``None`` for anything :meth:`Callback.encode` would not produce."""
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    parts = data.split("|")
    if len(parts) != 4 or not parts[0].startswith(VERSION):
        return None
    try:
        action = Action(parts[0].removeprefix(VERSION))
    except ValueError:
        return None
    screening_id, revision = _number(parts[1]), _number(parts[2])
    if screening_id is None or revision is None or not _ARGS[action].fullmatch(parts[3]):
        return None
    return Callback(action, screening_id, revision, parts[3])
