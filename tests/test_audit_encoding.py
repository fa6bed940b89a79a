"""The audit chain's canonical text: the same as the standard library's, for what events hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.audit import GENESIS, canonical, next_link

# What an event's payload can hold: no floating-point numbers (decimals are strings).
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def standard(code: str, seq: int, kind: str, payload: Any, actor: int | None, at: datetime) -> str:
    """The canonical text as first defined, with the standard library."""
    event = {
        "screening": code,
        "seq": seq,
        "kind": kind,
        "payload": payload,
        "actor": actor,
        "at": at.astimezone(UTC).isoformat(),
    }
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(
    st.text(),
    st.integers(1, 10_000),
    st.text(),
    st.dictionaries(st.text(), values, max_size=6),
    st.none() | st.integers(-(2**63), 2**63 - 1),
)
def test_canonical_text_is_the_standard_librarys(
    code: str, seq: int, kind: str, payload: dict[str, Any], actor: int | None
) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=8)))
    assert hashable(canonical, code, seq, kind, payload, actor, at) == hashable(
        standard, code, seq, kind, payload, actor, at
    )


def hashable(encode: Any, *event: Any) -> bytes | None:
    """The UTF-8 text that is hashed; ``None`` for a lone surrogate, which neither can hash."""
    try:
        text: str = encode(*event)
        return text.encode()
    except UnicodeEncodeError:
        return None


def test_what_orjson_refuses_is_encoded_by_the_standard_library() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for payload in ({"big": 2**70}, {"n": {1: "integer key"}}):
        assert canonical("S-1", 1, "k", payload, None, at) == standard(
            "S-1", 1, "k", payload, None, at
        )


def test_a_known_event_keeps_its_hash() -> None:
    """An event hashed before the encoder changed: chains already stored must still verify."""
    link = next_link(
        "S-001",
        GENESIS,
        3,
        "answer_corrected",
        {
            "question": "hb",
            "raw": "9,5 g/dL “typed”",
            "value": {"type": "quantity", "value": "9.5", "unit": "g/dL"},
            "reason": "transcription error\nline two ≥ µ 名",
            "approve": True,
            "excluded_by": [],
            "none": None,
        },
        4242,
        datetime(2026, 11, 2, 8, 0, 1, 123456, tzinfo=UTC),
    )
    assert link.hash == "54a07409e493dd810840289a438d5877b2488115ddfe2e346bf714a8095619f0"
