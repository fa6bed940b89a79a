"""The audit trail's chain: each event hashed with SHA-256 over its predecessor's hash.

Both repositories link their events here so that the SQL store, the in-memory fake and the
JSON export hash exactly the same canonical encoding (checked by ``reports.chain``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from flows import Protocol

GENESIS = "0" * 64


def started(protocol: Protocol, at: str, noted: dict[str, Any] | None) -> dict[str, Any]:
    """A screening's first event: its protocol version, what else is noted, where it starts."""
    outcome = {"at": at, "status": "in_progress", "excluded_by": []}
    ids = {"protocol": protocol.id, "version": protocol.version, "digest": protocol.digest}
    return {**ids, **(noted or {}), "outcome": outcome}


def canonical(
    code: str, seq: int, kind: str, payload: dict[str, Any], actor: int | None, at: datetime
) -> str:
    """The exact text that is hashed for one event.

    It is ``json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    written by orjson, which gives the same text for what events hold (strings, integers,
    booleans, nulls, lists and objects with string keys; tested) in a fifth of the time: an
    export checks every event of every screening. What orjson refuses (an integer beyond 64
    bits, a key that is not a string) goes to the standard library's encoder. Events hold no
    floating-point numbers (decimals are written as strings), where the two would differ.
    """
    event = {
        "screening": code,
        "seq": seq,
        "kind": kind,
        "payload": payload,
        "actor": actor,
        "at": at.astimezone(UTC).isoformat(),
    }
    try:
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _CANONICAL.encode(event)


# What json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) uses, made once:
# json.dumps makes a new encoder at every call with options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, text: str) -> str:
    """SHA-256 over the previous hash and the event's canonical encoding."""
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainLink:
    """The fields of an event the chain covers (from the database or an export)."""

    seq: int
    kind: str
    payload: dict[str, Any]
    actor: int | None
    at: datetime
    prev_hash: str
    hash: str


def next_link(
    code: str,
    prev_hash: str,
    seq: int,
    kind: str,
    payload: dict[str, Any],
    actor: int | None,
    at: datetime,
) -> ChainLink:
    """Build the next event of a chain."""
    text = canonical(code, seq, kind, payload, actor, at)
    return ChainLink(seq, kind, payload, actor, at, prev_hash, chain_hash(prev_hash, text))
