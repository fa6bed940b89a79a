"""Checking a screening's audit chain: every event recomputed and linked to its predecessor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.audit import GENESIS, ChainLink, canonical, chain_hash
from storage.records import AuditEntry


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking a screening's chain."""

    code: str
    checked: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None
    head: str = GENESIS


def verify_chain(code: str, links: Sequence[ChainLink | AuditEntry]) -> ChainReport:
    """Recompute a screening's chain and report the first broken link.

    An edited event no longer matches its hash; a deleted one leaves a gap in the sequence and a
    successor whose ``prev_hash`` does not match; an inserted one breaks the sequence or the
    link to its predecessor. ``links`` are an export's links or a repository's entries.
    """
    prev = GENESIS
    for expected_seq, link in enumerate(sorted(links, key=lambda x: x.seq), start=1):
        if link.seq != expected_seq:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                expected_seq,
                f"event {expected_seq} is missing (found {link.seq})",
                prev,
            )
        if link.prev_hash != prev:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                link.seq,
                f"event {link.seq} does not follow event {link.seq - 1}",
                prev,
            )
        text = canonical(code, link.seq, link.kind, link.payload, link.actor, link.at)
        if chain_hash(prev, text) != link.hash:
            return ChainReport(
                code,
                expected_seq - 1,
                False,
                link.seq,
                f"event {link.seq} ({link.kind}) was altered",
                prev,
            )
        prev = link.hash
    return ChainReport(code, len(links), True, head=prev)


def verify_entries(code: str, entries: Sequence[AuditEntry]) -> ChainReport:
    """Verify a screening's chain as read from a repository."""
    # The entries carry every field the chain covers: checked as they are, without copying
    # each into a ChainLink (a frozen dataclass, slow to build), which cost an export 5 %.
    return verify_chain(code, entries)
