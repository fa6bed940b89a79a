"""An in-memory repository: the fake the tests use, with the same contract as the SQL one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from flows import (
    AnswerRecorded,
    AnswerRetired,
    DecisionRecorded,
    DecisionWithdrawn,
    Protocol,
    ScreeningState,
    Step,
)
from flows.dialog import Event
from flows.trail import step_events
from storage.audit import GENESIS, next_link, started
from storage.clock import utc_now
from storage.records import (
    CLOSE_STATUSES,
    AnswerEntry,
    AuditEntry,
    CloseKind,
    CodeTaken,
    DecisionEntry,
    DuplicateUpdate,
    Notice,
    Screening,
    Staff,
    StaleWrite,
    Visitor,
)


class InMemoryRepository:
    """Keeps everything in dictionaries; a lock makes each method one atomic transaction."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._staff: dict[int, Staff] = {}
        self._protocols: dict[str, Protocol] = {}
        self._screenings: dict[int, Screening] = {}
        self._answers: dict[int, list[AnswerEntry]] = {}
        self._decisions: dict[int, list[DecisionEntry]] = {}
        self._audit: dict[str, list[AuditEntry]] = {}
        self._updates: set[int] = set()
        self._notices: list[Notice] = []

    # --- staff ---
    def get_staff(self, telegram_id: int) -> Staff | None:
        """See :class:`storage.repository.Repository`."""
        return self._staff.get(telegram_id)

    def visitor(self, telegram_id: int, update_id: int) -> Visitor:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            staff = self._staff.get(telegram_id)
            current = None
            if staff is not None and staff.current_screening_id is not None:
                current = self._screenings.get(staff.current_screening_id)
            return Visitor(staff, current, update_id in self._updates)

    def save_staff(self, staff: Staff) -> Staff:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            known = self._staff.get(staff.telegram_id)
            if known is not None:  # the working screening and chat are not part of a staff edit
                staff = replace(
                    staff,
                    current_screening_id=known.current_screening_id,
                    conversation=known.conversation,
                )
            self._staff[staff.telegram_id] = staff
            return staff

    def set_current_screening(self, telegram_id: int, screening_id: int | None) -> None:
        """See :class:`storage.repository.Repository`."""
        self._set_on_staff(telegram_id, current_screening_id=screening_id)

    def save_conversation(self, telegram_id: int, conversation: str | None) -> None:
        """See :class:`storage.repository.Repository`."""
        self._set_on_staff(telegram_id, conversation=conversation)

    def _set_on_staff(self, telegram_id: int, **values: Any) -> None:
        with self._lock:
            staff = self._staff.get(telegram_id)
            if staff is not None:
                self._staff[telegram_id] = replace(staff, **values)

    def list_staff(self) -> list[Staff]:
        """See :class:`storage.repository.Repository`."""
        return sorted(self._staff.values(), key=lambda s: (s.display_name, s.telegram_id))

    # --- protocols ---
    def save_protocol(self, protocol: Protocol) -> None:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            self._protocols.setdefault(protocol.digest, protocol)

    def load_protocol(self, digest: str) -> Protocol | None:
        """See :class:`storage.repository.Repository`."""
        return self._protocols.get(digest)

    # --- screenings ---
    def _claim_update(self, update_id: int | None) -> None:
        if update_id is not None:
            if update_id in self._updates:
                raise DuplicateUpdate(update_id)
            self._updates.add(update_id)

    def _append_audit(
        self, code: str, kind: str, payload: dict[str, object], actor: int | None, at: datetime
    ) -> None:
        chain = self._audit.setdefault(code, [])
        prev = chain[-1].hash if chain else GENESIS
        link = next_link(code, prev, len(chain) + 1, kind, dict(payload), actor, at)
        chain.append(
            AuditEntry(code, link.seq, kind, link.payload, actor, at, link.prev_hash, link.hash)
        )

    def create_screening(
        self,
        code: str,
        protocol: Protocol,
        state: ScreeningState,
        *,
        actor: int,
        update_id: int | None = None,
        site: str | None = None,
        noted: dict[str, Any] | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            self._claim_update(update_id)  # first: a redelivery is a duplicate
            if any(s.code == code for s in self._screenings.values()):
                self._updates.discard(update_id or -1)  # nothing was written
                raise CodeTaken(code)
            self._protocols.setdefault(protocol.digest, protocol)
            now = self._clock()
            screening = Screening(
                id=len(self._screenings) + 1,
                code=code,
                protocol_id=protocol.id,
                protocol_version=protocol.version,
                protocol_digest=protocol.digest,
                status="in_progress",
                state=state,
                created_by=actor,
                site=site,
                created_at=now,
                updated_at=now,
                row_version=1,
            )
            self._screenings[screening.id] = screening
            self._answers[screening.id] = []
            first = started(protocol, state.at, noted)
            self._append_audit(code, "screening_started", first, actor, now)
            staff = self._staff.get(actor)
            if staff is not None:
                self._staff[actor] = replace(staff, current_screening_id=screening.id)
            return screening

    def get_screening(self, screening_id: int) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        return self._screenings.get(screening_id)

    def find_screening(self, code: str) -> Screening | None:
        """See :class:`storage.repository.Repository`."""
        return next((s for s in self._screenings.values() if s.code == code), None)

    def unfinished(self, telegram_id: int, limit: int = 20) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        mine = [
            s for s in self._screenings.values() if s.created_by == telegram_id and s.unfinished
        ]
        return sorted(mine, key=lambda s: (s.updated_at, s.id), reverse=True)[:limit]

    def waiting(
        self, status: str, created_by: int | None = None, limit: int = 50
    ) -> list[Screening]:
        """See :class:`storage.repository.Repository`."""
        found = [
            s
            for s in self._screenings.values()
            if s.status == status
            and s.unfinished
            and (created_by is None or s.created_by == created_by)
        ]
        return sorted(found, key=lambda s: (s.updated_at, s.id))[:limit]

    # --- notices ---
    def add_notice(
        self, screening_id: int, telegram_id: int, kind: str, due_at: datetime, *, sent: bool
    ) -> Notice:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            sent_at = self._clock() if sent else None
            notice = Notice(
                len(self._notices) + 1, screening_id, telegram_id, kind, due_at, sent_at
            )
            self._notices.append(notice)
            return notice

    def due_notices(self, now: datetime, kind: str) -> list[Notice]:
        """See :class:`storage.repository.Repository`."""
        due = [n for n in self._notices if n.kind == kind and n.due_at <= now and not n.sent_at]
        return sorted(due, key=lambda n: (n.due_at, n.id))

    def claim_notice(self, notice_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            notice = self._notices[notice_id - 1]
            if notice.sent_at is not None:
                return False
            self._notices[notice_id - 1] = replace(notice, sent_at=self._clock())
            return True

    def notices(self, screening_id: int) -> list[Notice]:
        """See :class:`storage.repository.Repository`."""
        return [n for n in self._notices if n.screening_id == screening_id]

    def in_range(self, start: datetime, end: datetime) -> Iterator[Screening]:
        """See :class:`storage.repository.Repository`."""
        found = [s for s in self._screenings.values() if start <= s.created_at < end]
        yield from sorted(found, key=lambda s: (s.created_at, s.id))

    def _claim_current(self, screening: Screening, update_id: int | None) -> Screening:
        """Claim the update, then the screening as stored, at ``screening``'s version."""
        self._claim_update(update_id)
        current = self._screenings[screening.id]
        if current.row_version != screening.row_version:
            self._updates.discard(update_id or -1)  # nothing was written
            raise StaleWrite(
                f"screening {screening.code} changed (version "
                f"{current.row_version}, write based on {screening.row_version})"
            )
        return current

    def record_step(
        self,
        screening: Screening,
        event: Event,
        result: Step,
        *,
        actor: int,
        raw_text: str | None = None,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            current = self._claim_current(screening, update_id)
            now = self._clock()
            history = self._answers[screening.id]
            for change in result.changes:
                if isinstance(change, AnswerRecorded | AnswerRetired):
                    status: Literal["superseded", "retired"] = (
                        "superseded" if isinstance(change, AnswerRecorded) else "retired"
                    )
                    for i, entry in enumerate(history):
                        if entry.question_id == change.question_id and entry.status == "active":
                            history[i] = replace(
                                entry, status=status, changed_at=now, change_reason=reason
                            )
                if isinstance(change, AnswerRecorded):
                    history.append(
                        AnswerEntry(
                            change.question_id, raw_text, change.value, actor, now, "active"
                        )
                    )
            decided = self._decisions.setdefault(screening.id, [])
            for change in result.changes:
                if isinstance(change, DecisionRecorded):
                    d = change.decision
                    decided.append(DecisionEntry(d.criterion_id, d.approve, d.reason, actor))
                elif isinstance(change, DecisionWithdrawn):
                    cid = change.decision.criterion_id
                    decided[:] = [
                        replace(e, withdrawn=True) if e.criterion_id == cid else e for e in decided
                    ]
            for kind, payload in step_events(event, result, raw_text, reason):
                self._append_audit(current.code, kind, payload, actor, now)
            updated = replace(
                current,
                state=result.state,
                status=result.verdict.status.value,
                updated_at=now,
                row_version=current.row_version + 1,
            )
            self._screenings[screening.id] = updated
            return updated

    def close(
        self,
        screening: Screening,
        kind: CloseKind,
        *,
        actor: int,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening:
        """See :class:`storage.repository.Repository`."""
        with self._lock:
            current = self._claim_current(screening, update_id)
            now = self._clock()
            status = kind if kind in CLOSE_STATUSES else current.status
            self._append_audit(
                current.code, f"screening_{kind}", {"reason": reason, "status": status}, actor, now
            )
            updated = replace(
                current,
                status=status,
                closed_at=now,
                close_kind=kind,
                close_reason=reason,
                closed_by=actor,
                updated_at=now,
                row_version=current.row_version + 1,
            )
            self._screenings[screening.id] = updated
            staff = self._staff.get(actor)
            if staff is not None and staff.current_screening_id == screening.id:
                self._staff[actor] = replace(staff, current_screening_id=None)
            return updated

    # --- history ---
    def answers(self, screening_id: int) -> list[AnswerEntry]:
        """See :class:`storage.repository.Repository`."""
        return list(self._answers.get(screening_id, []))

    def decisions(self, screening_id: int) -> list[DecisionEntry]:
        """See :class:`storage.repository.Repository`."""
        return list(self._decisions.get(screening_id, []))

    def audit_events(self, code: str) -> list[AuditEntry]:
        """See :class:`storage.repository.Repository`."""
        return list(self._audit.get(code, []))

    def audit_trails(self, codes: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """See :class:`storage.repository.Repository`."""
        return {code: list(self._audit.get(code, [])) for code in codes}

    def audited_codes(self) -> list[str]:
        """See :class:`storage.repository.Repository`."""
        return sorted(self._audit)

    def mark_processed(self, update_id: int) -> None:
        """See :class:`storage.repository.Repository`."""
        self._updates.add(update_id)

    def seen_update(self, update_id: int) -> bool:
        """See :class:`storage.repository.Repository`."""
        return update_id in self._updates
