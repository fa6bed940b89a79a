"""A patient screened against several trials in one pass (``flows.joint``), as stored.

Each trial is a screening of its own, started together: its own code ``CODE/<trial id>``, its
own answers, verdict, review, sign-off, audit chain and transcript. What ties them is the code
before the ``/`` (user codes cannot contain one). An answer given in one trial's screening is
taken by another when that trial's own dialog reaches the same concept, and is recorded there
as its own answer, marked with where it came from.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

from bot.results import AlreadyProcessed, Outcome, Planned, Recorded
from bot.service import ScreeningService
from flows import Answer, AnswerValue, GoBack, Protocol, start, step
from flows.joint import key_of, take
from flows.messages import Message, msg
from storage.records import (
    PASS_SEPARATOR,
    AnswerEntry,
    CodeTaken,
    DuplicateUpdate,
    Screening,
)

SHARED_MARK = "[shared from {code}]"
"""How a shared answer's raw text begins in the trial that took it (then the value)."""


def member_code(code: str, protocol: Protocol) -> str:
    """The code of one trial's screening in a pass."""
    return f"{code}{PASS_SEPARATOR}{protocol.id}"


def begin_pass(
    service: ScreeningService,
    code: str,
    protocols: Sequence[Protocol],
    *,
    actor: int,
    update_id: int | None = None,
    site: str | None = None,
) -> list[Screening] | Message | AlreadyProcessed:
    """Start one screening per trial, in the order given (the pass asks the first one first).

    Returns:
        The trials' screenings, or why not (nothing at all for a redelivered update).
    """
    code = code.strip()
    problem = service.check_code(code)
    if problem is not None:
        return problem
    codes = [member_code(code, p) for p in protocols]
    found = [service.repo.find_screening(c) for c in codes]
    if update_id is not None and service.repo.seen_update(update_id):
        # A redelivered /new: start the trials a crash left unstarted, and say nothing more.
        if any(found):
            _start(service, code, codes, protocols, found, actor=actor, site=site)
        return AlreadyProcessed()
    if any(found) or service.repo.find_screening(code) is not None:
        return msg("code_taken", code=code)
    try:
        return _start(
            service, code, codes, protocols, found, actor=actor, site=site, update_id=update_id
        )
    except CodeTaken:  # taken by a concurrent /new since it was checked
        return msg("code_taken", code=code)
    except DuplicateUpdate:
        return AlreadyProcessed()


def _start(
    service: ScreeningService,
    code: str,
    codes: list[str],
    protocols: Sequence[Protocol],
    found: list[Screening | None],
    *,
    actor: int,
    site: str | None,
    update_id: int | None = None,
) -> list[Screening]:
    """Start each trial not started yet; the first one started claims the update."""
    started: list[Screening] = []
    for index, protocol in enumerate(protocols):
        screening = found[index]
        if screening is None:
            together = {"code": code, "screenings": codes[:index] + codes[index + 1 :]}
            screening = service.repo.create_screening(
                codes[index],
                protocol,
                start(protocol),
                actor=actor,
                update_id=update_id,
                site=site,
                noted={**service.offered(), "pass": together},
            )
            update_id = None  # claimed once
        started.append(screening)
    return started


def members(service: ScreeningService, screening: Screening) -> list[Screening]:
    """Every trial of the screening's pass, in the order of the catalogue.

    A screening in no pass is its own only member.
    """
    code = screening.pass_code
    if code is None:
        return [screening]
    ids = dict.fromkeys(p.id for p in service.catalog.protocols)
    found = [service.repo.find_screening(f"{code}{PASS_SEPARATOR}{pid}") for pid in ids]
    return [s for s in found if s is not None]


@dataclass(frozen=True, slots=True)
class SharedAnswer:
    """An answer of the pass that another trial may take: its value and where it was given."""

    value: AnswerValue
    code: str


def pool(service: ScreeningService, trials: Sequence[Screening]) -> dict[str, SharedAnswer]:
    """The pass's shared answers by concept (a trial's own questions are not shared)."""
    found: dict[str, SharedAnswer] = {}
    for trial in trials:
        protocol = service.protocol_for(trial)
        for qid, value in trial.state.answers.items():
            key = key_of(protocol, protocol.questions_by_id[qid])
            if key.startswith("concept:"):
                found.setdefault(key, SharedAnswer(value, trial.code))
    return found


def shared_steps(
    service: ScreeningService,
    trial: Screening,
    shared: dict[str, SharedAnswer],
    actor: int,
) -> list[Planned]:
    """The steps that move ``trial`` on with the shared answers its dialog reaches.

    Each step is planned on the state the previous one leaves: store them in order, each on
    the screening the previous store returned (:attr:`Planned.screening` is only the first's).
    """
    if not trial.unfinished or trial.state.finished:
        return []
    protocol = service.protocol_for(trial)
    moved = take(protocol, trial.state, {key: s.value for key, s in shared.items()})
    planned: list[Planned] = []
    for event, result in moved.steps:
        source = shared[key_of(protocol, protocol.questions_by_id[event.question_id])]
        raw = SHARED_MARK.format(code=source.code)
        planned.append(Planned(trial, event, result, actor, raw_text=raw))
    return planned


def corrections(
    service: ScreeningService,
    trial: Screening,
    source: Screening,
    reasons: dict[str, str | None],
    actor: int,
) -> list[Planned]:
    """The steps that correct ``trial``'s shared answers that ``source`` now answers otherwise.

    Each is a correction of the trial's own (back to the question, then the new value with the
    reason given in ``source``), so the trial is evaluated again and reopens if the new value
    no longer decides it. Closed trials are left as they were closed.

    Args:
        service: The screening use cases.
        trial: One trial of the pass.
        source: The trial in which the answer was corrected.
        reasons: The reason for the change in ``source``, by its question id.
        actor: Who corrected it.
    """
    if not trial.unfinished or trial.id == source.id:
        return []
    protocol, theirs = service.protocol_for(trial), service.protocol_for(source)
    now = {
        key_of(theirs, theirs.questions_by_id[qid]): (qid, value)
        for qid, value in source.state.answers.items()
    }
    state, planned = trial.state, []
    for qid, value in trial.state.answers.items():
        key = key_of(protocol, protocol.questions_by_id[qid])
        if not key.startswith("concept:") or key not in now or now[key][1] == value:
            continue
        back = step(protocol, state, GoBack(qid))
        if back.rejected is not None:
            continue
        event = Answer(qid, now[key][1])
        result = step(protocol, back.state, event)
        if result.rejected is not None:
            continue
        raw, reason = SHARED_MARK.format(code=source.code), reasons.get(now[key][0])
        planned += [
            Planned(trial, GoBack(qid), back, actor),
            Planned(trial, event, result, actor, raw_text=raw, reason=reason),
        ]
        state = result.state
    return planned


Advance = Generator[Planned, Outcome | None, list[Screening]]
"""Steps to store, each sent back what storing it gave; returns the trials as they stand."""


def advance(
    service: ScreeningService,
    screening: Screening,
    trials: Sequence[Screening],
    reasons: dict[str, str | None],
    actor: int,
) -> Advance:
    """After a step in ``screening``, move every open trial of its pass on.

    A shared answer corrected in ``screening`` is corrected first in every trial that took it
    (:func:`corrections`); then each trial takes the shared answers its dialog reaches
    (:func:`shared_steps`), ``screening``'s own answers first. The engine works here; the
    caller stores each step yielded (in a database thread, in the bot) and sends back what
    storing it gave, so that the next step is planned on the stored screening.

    Args:
        service: The screening use cases.
        screening: The trial the step was taken in, as stored.
        trials: Every trial of its pass (:func:`members`).
        reasons: The reasons for changes in ``screening``, by question id.
        actor: Who took the step.
    """
    shared = pool(service, sorted(trials, key=lambda t: t.id != screening.id))
    moved: list[Screening] = []
    for trial in trials:
        current = screening if trial.id == screening.id else trial
        fixes = corrections(service, current, screening, reasons, actor)
        current = yield from _in_turn(fixes, current)
        # Corrected, a trial may reach shared answers it had stopped before.
        current = yield from _in_turn(shared_steps(service, current, shared, actor), current)
        moved.append(current)
    return moved


def _in_turn(
    steps: list[Planned], screening: Screening
) -> Generator[Planned, Outcome | None, Screening]:
    """Yield each step on the screening the previous one left; stop at one not recorded."""
    for planned in steps:
        stored = yield replace(planned, screening=screening)
        if not isinstance(stored, Recorded):
            break
        screening = stored.screening
    return screening


def advance_now(
    service: ScreeningService, screening: Screening, reasons: dict[str, str | None], actor: int
) -> list[Screening]:
    """:func:`advance`, storing each step at once (the console, and tests)."""
    steps = advance(service, screening, members(service, screening), reasons, actor)
    stored: Outcome | None = None
    try:
        while True:
            stored = service.store(steps.send(stored))
    except StopIteration as done:
        moved: list[Screening] = done.value
        return moved


def to_show(trials: Sequence[Screening], screening: Screening) -> Screening:
    """The trial to show next: ``screening`` while it asks, else the first trial asking."""
    here = next((t for t in trials if t.id == screening.id), screening)
    if not here.state.finished:
        return here
    return next((t for t in trials if t.unfinished and not t.state.finished), here)


def reasons_of(answers: Sequence[AnswerEntry]) -> dict[str, str | None]:
    """The reason each question's answer was last changed for, from a screening's answers."""
    return {a.question_id: a.change_reason for a in answers if a.status == "superseded"}


__all__ = [
    "SHARED_MARK",
    "Advance",
    "SharedAnswer",
    "advance",
    "advance_now",
    "begin_pass",
    "corrections",
    "member_code",
    "members",
    "pool",
    "reasons_of",
    "shared_steps",
    "to_show",
]
