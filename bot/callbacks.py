"""Callback data of inline buttons: which screening, which revision, what was chosen.

Every button carries the screening id and its row version, so a tap on a button from an older
message can be recognised and refused. Encoded as ``action|screening|revision|argument`` to stay
within Telegram's 64 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BYTES = 64


@dataclass(frozen=True, slots=True)
class Callback:
    """A decoded button press."""

    action: str
    screening_id: int
    revision: int
    arg: str = ""

    def encode(self) -> str:
        """The callback_data string."""
        data = f"{self.action}|{self.screening_id}|{self.revision}|{self.arg}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data


def decode(data: str | None) -> Callback | None:
    """Parse callback_data; ``None`` for anything not made by :meth:`Callback.encode`."""
    if not data:
        return None
    parts = data.split("|", 3)
    if len(parts) != 4 or not parts[1].lstrip("-").isdecimal() or not parts[2].isdecimal():
        return None
    return Callback(parts[0], int(parts[1]), int(parts[2]), parts[3])
