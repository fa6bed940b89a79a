"""Use cases shared by the Telegram bot and the console: parse → step → store.

No Telegram here: handlers translate updates into these calls and the outcomes into messages.
Invalid input, outdated actions and conflicts are returned as values, never raised.
"""

from __future__ import annotations

import re
from typing import Any

from bot.access import can_decide
from bot.results import (
    AlreadyProcessed,
    ConfirmFirst,
    Conflict,
    NeedsReason,
    Outcome,
    Planned,
    Reask,
    Recorded,
    Refused,
)
from flows import (
    Answer,
    AnswerValue,
    Catalog,
    CompletePending,
    Decide,
    Decision,
    GoBack,
    Invalid,
    Protocol,
    ScreeningState,
    current_question,
    machine,
    start,
    step,
)
from flows.batch import read_answer
from flows.dialog import Event, replaced_answer
from flows.messages import Message, msg
from storage.records import (
    PASS_SEPARATOR,
    CloseKind,
    CodeTaken,
    DuplicateUpdate,
    Screening,
    Staff,
    StaleWrite,
)
from storage.repository import Repository

_HAS_DIGIT = re.compile(r"\d")
_REFUSED: dict[CloseKind, str] = {
    # Pending results and outstanding decisions are not eligibility: signing them would put
    # "I confirm…" under a screening that can never be completed.
    "signed": "cannot_sign",
    "exclusion_confirmed": "not_excluded",
    "not_completed": "completed_already",
    "cancelled": "reason_needed",
}
"""Why a screening cannot be closed this way from where it stands."""

SIGN_MEANING = "I confirm these answers reflect the source documents."
"""What signing a screening means; recorded with the signature."""


class ScreeningService:
    """Screening use cases over a repository and the protocol catalog."""

    def __init__(self, repo: Repository, catalog: Catalog, code_pattern: str) -> None:
        self.repo = repo
        self.catalog = catalog
        self._code = re.compile(code_pattern)

    def protocol_for(self, screening: Screening) -> Protocol:
        """The protocol version the screening started with (stored, or bundled)."""
        protocol = self.catalog.by_digest(screening.protocol_digest) or self.repo.load_protocol(
            screening.protocol_digest
        )
        if protocol is None:
            raise LookupError(f"protocol version {screening.protocol_digest} is not available")
        return protocol

    def offered(self) -> dict[str, Any]:
        """What a new screening's start records of the site's set-up: the trials active."""
        return {"offered": [p.id for p in self.catalog.current()]}

    def check_code(self, code: str) -> Message | None:
        """Refuse codes that do not match the pattern or could be a person's name."""
        # The separator joins a pass's code to its trials' ids, whatever the pattern allows.
        if not self._code.fullmatch(code) or not _HAS_DIGIT.search(code) or PASS_SEPARATOR in code:
            return msg("code_invalid")
        return None

    def begin(
        self,
        code: str,
        protocol: Protocol,
        *,
        actor: int,
        update_id: int | None = None,
        site: str | None = None,
        state: ScreeningState | None = None,
    ) -> Screening | Message | AlreadyProcessed:
        """Start a screening, or say why not (nothing at all for a redelivered update).

        ``state`` is the new screening's first state, when worked out already (``start``).
        """
        code = code.strip()
        problem = self.check_code(code)
        if problem is not None:
            return problem
        taken = (f"{code}{PASS_SEPARATOR}{p.id}" for p in self.catalog.current())
        if any(self.repo.find_screening(member) for member in taken):
            return msg("code_taken", code=code)  # screened already in a pass over several trials
        try:
            return self.repo.create_screening(
                code,
                protocol,
                state or start(protocol),
                actor=actor,
                update_id=update_id,
                site=site,
                noted=self.offered(),
            )
        except CodeTaken:
            return msg("code_taken", code=code)
        except DuplicateUpdate:
            return AlreadyProcessed()

    def plan(
        self,
        screening: Screening,
        event: Event,
        *,
        actor: int,
        raw_text: str | None = None,
        reason: str | None = None,
        echo: Message | None = None,
        staff: Staff | None = None,
    ) -> Planned | Refused:
        """Work out an event's step, or why it is refused; nothing is stored.

        ``staff`` is the actor when known already (the bot reads it with every update).
        """
        refusal = self._refusal(screening, event, actor, staff)
        if refusal is not None:
            return Refused(refusal, screening)
        result = step(self.protocol_for(screening), screening.state, event)
        if result.rejected is not None:
            return Refused(result.rejected, screening)
        return Planned(screening, event, result, actor, raw_text, reason, echo)

    def store(self, planned: Planned, *, update_id: int | None = None) -> Outcome:
        """Store a planned step in one transaction, or say why it was not."""
        try:
            stored = self.repo.record_step(
                planned.screening,
                planned.event,
                planned.result,
                actor=planned.actor,
                raw_text=planned.raw_text,
                reason=planned.reason,
                update_id=update_id,
            )
        except DuplicateUpdate:
            return AlreadyProcessed()
        except StaleWrite:
            current = self.repo.get_screening(planned.screening.id)
            assert current is not None
            return Conflict(current)
        return Recorded(stored, planned.result, planned.echo)

    def finish(self, prepared: Outcome | Planned, *, update_id: int | None = None) -> Outcome:
        """Store what was planned; anything else (a hint, a refusal) is the outcome as it is."""
        if isinstance(prepared, Planned):
            return self.store(prepared, update_id=update_id)
        return prepared

    def _refusal(
        self, screening: Screening, event: Event | None, actor: int, staff: Staff | None = None
    ) -> Message | None:
        """Why ``actor`` may not apply ``event`` (``None``: closing) to ``screening``, if so.

        Checked here, not only by which buttons a screen shows, so that every entry point
        (bot, console, command line) obeys the same rules.
        """
        if isinstance(event, Decide):
            staff = staff if staff is not None else self.repo.get_staff(actor)
            if staff is None or not can_decide(staff, screening):
                return msg("decide_role")
            return None
        if screening.created_by != actor:
            return msg("not_owner", code=screening.code)
        return None

    def answer_text(
        self,
        screening: Screening,
        text: str,
        *,
        actor: int,
        confirmed: bool = False,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Outcome:
        """Answer the current question with typed text."""
        prepared = self.plan_text(screening, text, actor=actor, confirmed=confirmed, reason=reason)
        return self.finish(prepared, update_id=update_id)

    def plan_text(
        self,
        screening: Screening,
        text: str,
        *,
        actor: int,
        confirmed: bool = False,
        reason: str | None = None,
    ) -> Outcome | Planned:
        """:meth:`answer_text` up to storing: the step, or what to ask first."""
        protocol = self.protocol_for(screening)
        question = current_question(protocol, screening.state)
        if question is None:
            return Refused(msg("not_answerable"), screening)
        parsed = read_answer(protocol, question, text)
        if isinstance(parsed, Invalid):
            return Reask(parsed.hint)
        previous = replaced_answer(screening.state, question.id, parsed.value)
        match self._given(
            screening, parsed.confirm is not None and not confirmed, previous, reason
        ):
            case machine.CONFIRMING:
                return ConfirmFirst(question.id, parsed)
            case machine.AWAITING_REASON:
                assert previous is not None
                return NeedsReason(question.id, previous, parsed.value, parsed.echo)
        answer = Answer(question.id, parsed.value)
        return self.plan(
            screening, answer, actor=actor, raw_text=text, reason=reason, echo=parsed.echo
        )

    def answer_prefilled(
        self,
        screening: Screening,
        items: dict[str, tuple[AnswerValue, str]],
        *,
        actor: int,
    ) -> tuple[Screening, list[tuple[str, Recorded]]]:
        """Record values typed ahead in one message (a lab panel) as their questions come up.

        Each value, read once when the message came, is recorded at its own question, one step
        and one audit event each, exactly as if it had been typed there; skip logic and early
        stop apply in between. Recorded items are removed from ``items``; those for questions
        not reached yet stay.

        Args:
            screening: The screening.
            items: The value and the text it was read from, by question id.
            actor: Who typed them.

        Returns:
            The screening afterwards, and each recorded question id with its outcome.
        """
        done: list[tuple[str, Recorded]] = []
        while screening.state.at in items:
            qid = screening.state.at
            value, raw = items.pop(qid)
            outcome = self.answer_value(screening, qid, value, raw, actor=actor)
            if not isinstance(outcome, Recorded):
                break
            screening = outcome.screening
            done.append((qid, outcome))
        return screening, done

    def answer_value(
        self,
        screening: Screening,
        question_id: str,
        value: AnswerValue,
        raw_text: str,
        *,
        actor: int,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Outcome:
        """Answer with a value chosen from buttons (yes/no, an option, unknown)."""
        prepared = self.plan_value(
            screening, question_id, value, raw_text, actor=actor, reason=reason
        )
        return self.finish(prepared, update_id=update_id)

    def plan_value(
        self,
        screening: Screening,
        question_id: str,
        value: AnswerValue,
        raw_text: str,
        *,
        actor: int,
        reason: str | None = None,
    ) -> Outcome | Planned:
        """:meth:`answer_value` up to storing."""
        previous = replaced_answer(screening.state, question_id, value)
        if self._given(screening, False, previous, reason) == machine.AWAITING_REASON:
            assert previous is not None
            return NeedsReason(question_id, previous, value)
        answer = Answer(question_id, value)
        return self.plan(screening, answer, actor=actor, raw_text=raw_text, reason=reason)

    def _given(
        self,
        screening: Screening,
        unusual: bool,
        previous: AnswerValue | None,
        reason: str | None,
    ) -> str | None:
        """Where the machine holds an answer just given, if it does.

        ``confirming`` (unusual), ``awaiting_reason`` (a change), or ``None``: recorded at once.
        """
        protocol = self.protocol_for(screening)
        state = screening.state
        model = machine.Screening(
            protocol,
            state.answers,
            state.decisions,
            unusual=unusual,
            unexplained=previous is not None and not reason,
        )
        return machine.run(protocol, model, state.at, "give")

    def go_back(
        self, screening: Screening, question_id: str, *, actor: int, update_id: int | None = None
    ) -> Outcome:
        """Return to an earlier question to change its answer."""
        prepared = self.plan(screening, GoBack(question_id), actor=actor)
        return self.finish(prepared, update_id=update_id)

    def complete_pending(
        self, screening: Screening, *, actor: int, update_id: int | None = None
    ) -> Outcome:
        """Ask again the questions answered "unknown"."""
        prepared = self.plan(screening, CompletePending(), actor=actor)
        return self.finish(prepared, update_id=update_id)

    def decide(
        self,
        screening: Screening,
        criterion_id: str,
        approve: bool,
        reason: str,
        *,
        actor: int,
        update_id: int | None = None,
    ) -> Outcome:
        """Record an investigator's decision on an overridable criterion."""
        event = Decide(Decision(criterion_id, approve, reason))
        prepared = self.plan(screening, event, actor=actor, reason=reason)
        return self.finish(prepared, update_id=update_id)

    def close(
        self,
        screening: Screening,
        kind: CloseKind,
        *,
        actor: int,
        reason: str | None = None,
        update_id: int | None = None,
    ) -> Screening | Outcome:
        """Sign, cancel, confirm the exclusion of, or close as not completed a screening.

        Only an eligible screening (every criterion met or approved, nothing pending) can be
        signed; only an exclusion can be confirmed; one that is neither can be closed as not
        completed, with a reason; a closed screening cannot be closed again.
        """
        state = screening.state
        refusal = self._refusal(screening, None, actor)
        if refusal is not None:
            return Refused(refusal, screening)
        if not screening.unfinished:
            return Refused(msg("already_closed", code=screening.code), screening)
        # The machine knows from where each way of closing leads to "closed".
        protocol = self.protocol_for(screening)
        model = machine.Screening(protocol, state.answers, state.decisions, reason=reason)
        if machine.run(protocol, model, state.at, machine.CLOSING[kind]) is None:
            needs_reason = kind in ("cancelled", "not_completed") and not model.has_reason()
            return Refused(msg("reason_needed" if needs_reason else _REFUSED[kind]), screening)
        try:
            return self.repo.close(screening, kind, actor=actor, reason=reason, update_id=update_id)
        except DuplicateUpdate:
            return AlreadyProcessed()
        except StaleWrite:
            current = self.repo.get_screening(screening.id)
            assert current is not None
            return Conflict(current)


__all__ = ["SIGN_MEANING", "ScreeningService"]
