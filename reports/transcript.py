"""A screening's transcript: everything an auditor needs to reconstruct it, from the audit trail.

The transcript is built from the audit events themselves (who, what, when, old and new values,
reasons, decisions, sign-off), so what an auditor reads is exactly what the hash chain covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from flows import Protocol, verdict_of
from flows.render import (
    STATUS_LABEL,
    answer_text,
    criterion_number,
    describe_check,
    outcome_text,
    question_label,
)
from flows.values import value_from_json
from flows.verdict import Outcome
from reports.replay import check
from storage.audit import ChainReport, verify_entries
from storage.records import CLOSE_STATUSES, CLOSE_WORDS, AuditEntry, Screening, Staff
from storage.repository import Repository


@dataclass(frozen=True, slots=True)
class Person:
    """Who acted, as known when the transcript was made."""

    telegram_id: int | None
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """One audit event with its human-readable description."""

    entry: AuditEntry
    actor: Person
    description: str
    local: datetime
    """When it happened, in the site's time zone (every export format shows it)."""


@dataclass(frozen=True, slots=True)
class CriterionLine:
    """One criterion's verdict with its explanation."""

    number: str
    text: str
    outcome: str
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    """A screening's transcript."""

    protocol: Protocol
    screening: Screening
    events: tuple[TranscriptEvent, ...]
    criteria: tuple[CriterionLine, ...]
    outcome: str
    status: str
    signed_by: Person | None
    chain: ChainReport
    generated_at: datetime
    timezone: str
    problems: tuple[str, ...] = ()
    """Where the stored rows differ from a replay of the events (``reports.replay``)."""

    @property
    def failures(self) -> tuple[str, ...]:
        """Why this transcript failed verification; empty when it verifies."""
        if not self.chain.ok:
            return (f"audit chain broken at event {self.chain.broken_at}: {self.chain.problem}",)
        return self.problems

    def local(self, moment: datetime) -> datetime:
        """A timestamp in the site's time zone."""
        return moment.astimezone(ZoneInfo(self.timezone))


_OUTCOME_WORDS = {
    Outcome.MET: "met",
    Outcome.NOT_MET: "not met",
    Outcome.UNKNOWN: "unknown",
    Outcome.NOT_APPLICABLE: "not applicable",
}


def _label(protocol: Protocol, qid: str) -> str:
    return question_label(protocol, qid, "en")


def _shown(protocol: Protocol, qid: str, value: Any) -> str:
    """A stored value as words: option labels, yes/no, canonical units with the ULN multiple."""
    if not isinstance(value, dict):
        return "?"
    return answer_text(protocol, qid, value_from_json(value), "en")


def describe(protocol: Protocol, kind: str, payload: dict[str, Any]) -> str:
    """An audit event in words."""
    qid = str(payload.get("question", ""))
    question = protocol.questions_by_id.get(qid)
    wording = f" “{question.text.en}”" if question else ""
    match kind:
        case "screening_started":
            text = (
                f"Screening started on protocol {payload.get('protocol')} "
                f"v{payload.get('version')} (sha256 {payload.get('digest')})"
            )
        case "answer_recorded":
            text = (
                f"{_label(protocol, qid)}:{wording} answered “{payload.get('raw')}” "
                f"= {_shown(protocol, qid, payload.get('value'))}"
            )
        case "answer_corrected":
            text = (
                f"{_label(protocol, qid)} changed from "
                f"{_shown(protocol, qid, payload.get('previous'))} to "
                f"{_shown(protocol, qid, payload.get('value'))} "
                f"(entered “{payload.get('raw')}”); "
                f"reason for change: {payload.get('reason') or 'none given'}"
            )
        case "answer_retired":
            text = f"{_label(protocol, qid)}: answer retired (question no longer relevant)"
        case "decision_recorded" | "decision_withdrawn":
            verdict = "approved" if payload.get("approve") else "rejected"
            number = criterion_number(protocol, str(payload.get("criterion")))
            what = (
                "Investigator decision"
                if kind == "decision_recorded"
                else "Withdrawn (answers changed): investigator decision"
            )
            text = f"{what} on criterion {number}: {verdict} — {payload.get('reason')}"
        case "went_back":
            text = f"Went back to {_label(protocol, qid)} to change it"
        case "completing_pending":
            text = "Completing the answers that were pending"
        case "screening_signed":
            text = f"Signed: “{payload.get('reason')}”"
        case "screening_cancelled":
            text = f"Screening cancelled: {payload.get('reason')}"
        case "screening_exclusion_confirmed":
            reason = payload.get("reason")
            text = "Exclusion confirmed; screening closed" + (f": {reason}" if reason else "")
        case "screening_not_completed":
            text = f"Screening closed as not completed: {payload.get('reason')}"
        case _:
            text = kind.replace("_", " ")
    outcome = payload.get("outcome")
    if isinstance(outcome, dict) and kind != "screening_started":
        status = str(outcome.get("status"))
        text += f" → {status.replace('_', ' ')}"
        if outcome.get("excluded_by"):
            numbers = [criterion_number(protocol, c) for c in outcome["excluded_by"]]
            text += f" (criterion {', '.join(numbers)} not met)"
    return text


class StaffDirectory:
    """Staff names and roles, looked up once per export."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._cache: dict[int, Staff | None] = {}

    def person(self, telegram_id: int | None) -> Person:
        """The person behind an id (``unknown`` when not, or no longer, on record)."""
        if telegram_id is None:
            return Person(None, "system", "system")
        if telegram_id not in self._cache:
            self._cache[telegram_id] = self._repo.get_staff(telegram_id)
        staff = self._cache[telegram_id]
        if staff is None:
            return Person(telegram_id, "unknown", "unknown")
        return Person(telegram_id, staff.display_name, staff.role.value)


def build_transcript(
    repo: Repository,
    screening: Screening,
    protocol: Protocol,
    *,
    timezone: str,
    now: datetime,
    staff: StaffDirectory | None = None,
    entries: list[AuditEntry] | None = None,
) -> Transcript:
    """Assemble a screening's transcript from its audit trail and current state.

    ``entries`` is the screening's audit trail when already read (it is read otherwise).
    """
    staff = staff or StaffDirectory(repo)
    if entries is None:
        entries = repo.audit_events(screening.code)
    zone = ZoneInfo(timezone)
    events = tuple(
        TranscriptEvent(
            e, staff.person(e.actor), describe(protocol, e.kind, e.payload), e.at.astimezone(zone)
        )
        for e in entries
    )
    chain = verify_entries(screening.code, entries)
    problems = (
        check(
            protocol, screening, entries, repo.answers(screening.id), repo.decisions(screening.id)
        )
        if chain.ok
        else ()
    )
    verdict = verdict_of(protocol, screening.state)
    answers = dict(screening.state.answers)
    criteria = []
    for cv in verdict.criteria:
        criterion = protocol.criteria_by_id[cv.criterion_id]
        explanation = tuple(describe_check(protocol, c, answers, "en") for c in cv.checks)
        if cv.decision is not None:
            verdict_word = "approved" if cv.decision.approve else "rejected"
            explanation += (f"Investigator {verdict_word}: {cv.decision.reason}",)
        criteria.append(
            CriterionLine(
                criterion.number, criterion.text.en, _OUTCOME_WORDS[cv.outcome], explanation
            )
        )
    signed = screening.closed_by if screening.close_kind == "signed" else None
    return Transcript(
        protocol=protocol,
        screening=screening,
        events=events,
        criteria=tuple(criteria),
        outcome=outcome_text(protocol, screening.state, verdict, "en"),
        status=(
            CLOSE_WORDS[screening.close_kind]
            if screening.close_kind in CLOSE_STATUSES
            else STATUS_LABEL[verdict.status]["en"]
        ),
        signed_by=staff.person(signed) if signed is not None else None,
        chain=chain,
        generated_at=now,
        timezone=timezone,
        problems=tuple(problems),
    )


def build_transcripts(
    repo: Repository,
    screenings: Iterable[Screening],
    protocol_for: Callable[[Screening], Protocol],
    *,
    timezone: str,
    now: datetime,
    page: int = 200,
) -> Iterator[Transcript]:
    """Transcripts of many screenings, read a page at a time (bulk exports).

    The audit trails of a page of screenings are read in one query, and staff are looked up
    once each: memory is bounded by the page, not by the number of screenings.
    """
    staff = StaffDirectory(repo)
    remaining = iter(screenings)
    while chunk := list(islice(remaining, page)):
        trails = repo.audit_trails([s.code for s in chunk])
        for s in chunk:
            yield build_transcript(
                repo,
                s,
                protocol_for(s),
                timezone=timezone,
                now=now,
                staff=staff,
                entries=trails[s.code],
            )
