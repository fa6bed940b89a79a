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
from flows.catalogue import tr
from flows.render import (
    criterion_number,
    describe_check,
    outcome_text,
    question_label,
    status_label,
)
from flows.showing import answer_text
from flows.text import Lang
from flows.values import value_from_json
from reports.chain import ChainReport, verify_entries
from reports.replay import check
from storage.records import CLOSE_STATUSES, AuditEntry, Screening, Staff
from storage.repository import Repository

# Transcripts are the record an auditor reads: in English, whatever the bot's language.
EN: Lang = "en"


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
    label = _label(protocol, qid)
    reason = payload.get("reason")
    match kind:
        case "screening_started":
            text = tr(
                "event_started",
                EN,
                protocol=payload.get("protocol"),
                version=payload.get("version"),
                digest=payload.get("digest"),
            )
            together = payload.get("pass")
            if isinstance(together, dict):
                codes = ", ".join(str(c) for c in together.get("screenings", []))
                text += tr("event_started_pass", EN, code=together.get("code"), codes=codes)
        case "answer_recorded":
            value = _shown(protocol, qid, payload.get("value"))
            text = tr(
                "event_answered",
                EN,
                label=label,
                wording=wording,
                raw=payload.get("raw"),
                value=value,
            )
        case "answer_corrected":
            text = tr(
                "event_corrected",
                EN,
                label=label,
                previous=_shown(protocol, qid, payload.get("previous")),
                value=_shown(protocol, qid, payload.get("value")),
                raw=payload.get("raw"),
                reason=reason or tr("event_no_reason", EN),
            )
        case "answer_retired":
            text = tr("event_retired", EN, label=label)
        case "decision_recorded" | "decision_withdrawn":
            key = "event_decision" if kind == "decision_recorded" else "event_decision_withdrawn"
            text = tr(
                key,
                EN,
                number=criterion_number(protocol, str(payload.get("criterion"))),
                verdict="approved" if payload.get("approve") else "rejected",
                reason=reason,
            )
        case "went_back":
            text = tr("event_went_back", EN, label=label)
        case "completing_pending":
            text = tr("event_completing", EN)
        case "screening_signed":
            text = tr("event_signed", EN, meaning=reason)
        case "screening_cancelled":
            text = tr("event_cancelled", EN, reason=reason)
        case "screening_exclusion_confirmed":
            text = tr("event_exclusion_confirmed", EN, reason=f": {reason}" if reason else "")
        case "screening_not_completed":
            text = tr("event_not_completed", EN, reason=reason)
        case _:
            text = kind.replace("_", " ")
    outcome = payload.get("outcome")
    if isinstance(outcome, dict) and kind != "screening_started":
        status = str(outcome.get("status"))
        text += f" → {status.replace('_', ' ')}"
        if outcome.get("excluded_by"):
            numbers = ", ".join(criterion_number(protocol, c) for c in outcome["excluded_by"])
            text += tr("event_excluded_by", EN, numbers=numbers)
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
                criterion.number,
                criterion.text.en,
                tr(f"outcome_{cv.outcome.value}", EN),
                explanation,
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
            tr(f"close_{screening.close_kind}", EN)
            if screening.close_kind in CLOSE_STATUSES
            else status_label(verdict.status, EN)
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
