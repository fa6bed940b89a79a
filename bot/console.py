"""``prescreen console``: a screening in the terminal, with the bot's engine and storage.

Anyone can try the dialog without Telegram; answers are stored exactly as the bot stores them,
so a screening started here can be resumed here (or in Telegram) later.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.passes import advance_now, begin_pass, reasons_of, to_show
from bot.results import (
    AlreadyProcessed,
    ConfirmFirst,
    Conflict,
    NeedsReason,
    Reask,
    Recorded,
    Refused,
)
from bot.service import SIGN_MEANING, ScreeningService
from flows import AnswerRecorded, AnswerValue, Protocol, current_question, verdict_of
from flows.batch import parse_batch
from flows.catalogue import tr
from flows.messages import Message, render
from flows.parsing import Invalid, Parsed
from flows.render import (
    outcome_text,
    question_label,
    question_text,
    short_title,
    summary,
    trial_standing,
    where_it_stands,
)
from flows.schema import ChoiceQuestion, YesNoQuestion
from flows.showing import answer_text
from flows.text import Lang
from storage.records import CloseKind, Screening

HELP = """Commands:
  /new CODE            start a screening          /resume N     resume unfinished screening N
  /back [N]            list the answers, or change answer N     /status  where it stands
  /complete            enter pending results      /decide 8.2 approve|reject REASON
  /confirm [REASON]    confirm an exclusion       /sign         sign an eligible screening
  /cancel REASON       abandon the screening      /incomplete REASON  close as not completed
  /quit                leave (the screening is kept)
Anything else answers the current question; 'unknown' is always accepted.
Several lab values in one line ("Hb 128 g/L, ANC 3.4, PLT 212") are read together."""

CLOSE_COMMANDS: dict[str, CloseKind] = {
    "/confirm": "exclusion_confirmed",
    "/sign": "signed",
    "/cancel": "cancelled",
    "/incomplete": "not_completed",
}
VERDICTS = {"approve": True, "reject": False}
YES = {"y", "yes", "是"}


class Console:
    """A line-oriented screening session."""

    def __init__(
        self,
        service: ScreeningService,
        actor: int,
        lang: Lang = "en",
        read: Callable[[str], str] = input,
        write: Callable[[str], None] = print,
    ) -> None:
        self.service = service
        self.actor = actor
        self.lang: Lang = lang
        self.read = read
        self.write = write
        self.screening: Screening | None = None
        # Values typed ahead in one line, read once, recorded as their questions come up (as
        # in the bot): the value and its text, and the value as shown back.
        self.prefill: dict[str, tuple[AnswerValue, str]] = {}
        self.echoes: dict[str, str] = {}

    # --- display ---
    def _protocol(self) -> Protocol:
        assert self.screening is not None
        return self.service.protocol_for(self.screening)

    def show(self) -> None:
        """Print the current question, or the outcome when the dialog is finished."""
        if self.screening is None:
            return
        protocol, state = self._protocol(), self.screening.state
        question = current_question(protocol, state)
        if question is not None:
            self.write(question_text(protocol, state, self.lang))
            if isinstance(question, YesNoQuestion):
                self.write("  [yes / no / unknown]")
            elif isinstance(question, ChoiceQuestion):
                # Numbered only where no label is a number itself (ECOG 0-4): there "3" is
                # the label 3, and a number in front of it would make it mean two things.
                options = " / ".join(
                    f"{i}) {o.text.get(self.lang)}" if question.numbered else o.text.get(self.lang)
                    for i, o in enumerate(question.options, 1)
                )
                self.write(f"  [{options} / unknown]")
            return
        verdict = verdict_of(protocol, state)
        self.write(outcome_text(protocol, state, verdict, self.lang))
        self.write(summary(protocol, verdict, self.lang))

    def list_unfinished(self) -> list[Screening]:
        """Print the actor's unfinished screenings, numbered for ``/resume N``."""
        found = self.service.repo.unfinished(self.actor)
        for i, s in enumerate(found, 1):
            protocol = self.service.protocol_for(s)
            self.write(
                f"  {i}) {s.code} — {short_title(protocol, self.lang)} — "
                f"{where_it_stands(protocol, s.state, self.lang)} — "
                f"{s.updated_at:%Y-%m-%d %H:%M} UTC"
            )
        return found

    # --- commands ---
    def _outcome(self, outcome: object) -> None:
        match outcome:
            case Recorded(screening=screening, echo=echo, result=result):
                self.screening = screening
                recorded = [c for c in result.changes if isinstance(c, AnswerRecorded)]
                if recorded:  # say what was recorded, for which question
                    change = recorded[-1]
                    protocol = self.service.protocol_for(screening)
                    shown = (
                        render(echo, self.lang)
                        if echo is not None
                        else answer_text(protocol, change.question_id, change.value, self.lang)
                    )
                    label = question_label(protocol, change.question_id, self.lang)
                    self.write(f"✔ {label}: {shown}")
            case Refused(message=message):
                self.write(f"✖ {render(message, self.lang)}")
            case Conflict(screening=screening):
                self.screening = screening
                self.write("✖ The screening was changed elsewhere; here is where it stands now.")
            case AlreadyProcessed():
                pass
            case Screening():
                self.screening = outcome
            case _:
                self.write(f"✖ {outcome}")

    def _batch(self, text: str) -> bool:
        """Several labelled values in one line: shown back, recorded once confirmed."""
        assert self.screening is not None
        protocol = self._protocol()
        batch = parse_batch(protocol, text)
        if batch is None:
            return False
        labels = {q: protocol.questions_by_id[q].label.get(self.lang) for q, _, _ in batch}
        problems = [(q, r) for q, _, r in batch if isinstance(r, Invalid)]
        for q, invalid in problems:
            self.write(f"✖ {labels[q]}: {render(invalid.hint, self.lang)}")
        if problems:
            return True
        for q, _, r in batch:
            assert isinstance(r, Parsed)
            self.write(
                f"  • {labels[q]}: {render(r.echo, self.lang)}" + (" ⚠" if r.confirm else "")
            )
        if self.read("Record these values? [yes/no] ").strip().lower() not in YES:
            self.write("Nothing was recorded.")
            return True
        read = [(q, raw, r) for q, raw, r in batch if isinstance(r, Parsed)]
        self.prefill = {q: (r.value, raw) for q, raw, r in read}
        self.echoes = {q: render(r.echo, self.lang) for q, _, r in read}
        self._apply_prefill()
        return True

    def _apply_prefill(self) -> None:
        if self.screening is None or not self.prefill:
            return
        protocol = self._protocol()
        self.screening, done = self.service.answer_prefilled(
            self.screening, self.prefill, actor=self.actor
        )
        for qid, _ in done:
            self.write(f"✔ {question_label(protocol, qid, self.lang)}: {self.echoes[qid]}")

    def _answers(self) -> list[str]:
        """The answered questions in protocol order, numbered from 1 for ``/back N``."""
        assert self.screening is not None
        protocol, answers = self._protocol(), self.screening.state.answers
        ids = [q.id for q in protocol.questions if q.id in answers]
        for i, qid in enumerate(ids, 1):
            shown = answer_text(protocol, qid, answers[qid], self.lang)
            self.write(f"  {i}) {question_label(protocol, qid, self.lang)}: {shown}")
        return ids

    def _back(self, rest: str) -> None:
        assert self.screening is not None
        if not rest:
            if self._answers():
                self.write("Change one with /back N.")
            else:
                self.write("Nothing has been answered yet.")
            return
        if rest.isdecimal():
            answered = [
                q.id for q in self._protocol().questions if q.id in self.screening.state.answers
            ]
            if not 1 <= int(rest) <= len(answered):
                self.write(f"✖ There is no answer {rest}; /back lists them.")
                return
            rest = answered[int(rest) - 1]
        self._outcome(self.service.go_back(self.screening, rest, actor=self.actor))

    def _choose_protocols(self) -> tuple[Protocol, ...]:
        """The trials of a new screening: asked when several are loaded ("a": all together)."""
        protocols = self.service.catalog.current()
        if len(protocols) == 1:
            return protocols
        self.write(f"  a) {tr('b_all_trials', self.lang, n=len(protocols))}")
        for i, p in enumerate(protocols, 1):
            self.write(f"  {i}) {short_title(p, self.lang)}")
        choice = self.read(f"{tr('choose_trial', self.lang)} [a, 1-{len(protocols)}] ").strip()
        if choice.lower() == "a":
            return protocols
        if choice.isdecimal() and 1 <= int(choice) <= len(protocols):
            return (protocols[int(choice) - 1],)
        self.write("✖ No trial chosen; nothing was started.")
        return ()

    def _begin(self, code: str) -> None:
        protocols = self._choose_protocols()
        if len(protocols) > 1:
            created: object = begin_pass(self.service, code, protocols, actor=self.actor)
            if isinstance(created, list):
                self.write(
                    tr(
                        "started_pass",
                        self.lang,
                        code=code.strip(),
                        n=len(created),
                        trials="\n".join(f"• {s.code}" for s in created),
                    )
                )
                created = created[0]
        elif protocols:
            created = self.service.begin(code, protocols[0], actor=self.actor)
        else:
            return
        if isinstance(created, Screening):
            self.screening = created
            self.prefill = {}
        elif isinstance(created, Message):  # (the console sends no update ids to repeat)
            self.write(f"✖ {render(created, self.lang)}")

    def _move_pass(self) -> None:
        """Move every trial of the pass on with the shared answers, and say where each is."""
        if self.screening is None or self.screening.pass_code is None:
            return
        reasons = reasons_of(self.service.repo.answers(self.screening.id))
        trials = advance_now(self.service, self.screening, reasons, self.actor)
        self.screening = to_show(trials, self.screening)
        self.write(
            " · ".join(
                trial_standing(self.service.protocol_for(t), t.state, self.lang) for t in trials
            )
        )

    def _answer(self, text: str) -> None:
        assert self.screening is not None
        if self._batch(text):
            return
        outcome = self.service.answer_text(self.screening, text, actor=self.actor)
        if isinstance(outcome, ConfirmFirst):
            assert outcome.parsed.confirm is not None
            reply = self.read(f"{render(outcome.parsed.confirm, self.lang)} [yes/no] ")
            if reply.strip().lower() not in YES:
                return
            outcome = self.service.answer_text(
                self.screening, text, actor=self.actor, confirmed=True
            )
        if isinstance(outcome, NeedsReason):
            reason = self.read("Reason for the change (e.g. transcription error)? ").strip()
            if not reason:
                self.write("✖ A correction needs a reason; nothing was changed.")
                return
            outcome = self.service.answer_text(
                self.screening, text, actor=self.actor, confirmed=True, reason=reason
            )
        if isinstance(outcome, Reask):
            self.write(f"✖ {render(outcome.hint, self.lang)}")
            return
        self._outcome(outcome)
        self._apply_prefill()

    def _decide(self, rest: str) -> None:
        """``/decide 8.2 approve REASON``: the criterion by the number the screen shows."""
        assert self.screening is not None
        number, verb, reason = [*rest.split(maxsplit=2), "", "", ""][:3]
        protocol = self._protocol()
        criterion = next((c for c in protocol.criteria if c.number == number), None)
        if criterion is None or verb.lower() not in VERDICTS or not reason.strip():
            self.write(
                "✖ Usage: /decide NUMBER approve|reject REASON, e.g. /decide 8.2 approve "
                "counts recovering (criteria: "
                + ", ".join(c.number for c in protocol.criteria if c.overridable)
                + ")"
            )
            return
        self._outcome(
            self.service.decide(
                self.screening, criterion.id, VERDICTS[verb.lower()], reason, actor=self.actor
            )
        )

    def command(self, line: str) -> bool:
        """Handle one line; return ``False`` to quit."""
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word in {"/quit", "/exit"}:
            return False
        if word == "/help":
            self.write(HELP)
        elif word == "/new":
            self._begin(rest)
        elif word == "/resume":
            found = self.service.repo.unfinished(self.actor)
            if rest.isdecimal() and 1 <= int(rest) <= len(found):
                self.screening = found[int(rest) - 1]
                self.prefill = {}
            else:
                self.list_unfinished()
        elif self.screening is None:
            self.write("Start with /new CODE or /resume N (/help lists the commands).")
        elif word == "/status":
            pass
        elif word == "/back":
            self._back(rest)
        elif word == "/complete":
            self._outcome(self.service.complete_pending(self.screening, actor=self.actor))
        elif word == "/decide":
            self._decide(rest)
        elif word in CLOSE_COMMANDS:
            kind = CLOSE_COMMANDS[word]
            reason = SIGN_MEANING if word == "/sign" else rest or None
            closed = self.service.close(self.screening, kind, actor=self.actor, reason=reason)
            self._outcome(closed)
            if isinstance(closed, Screening):
                self.write(f"Screening {closed.code} closed ({tr(f'close_{kind}', self.lang)}).")
                self.screening = None
                return True
        else:
            self._answer(line)
        self._move_pass()
        self.show()
        return True

    def run(self) -> None:
        """Read commands until ``/quit`` or end of input."""
        self.write("Prescreen console — /help lists the commands.")
        if self.list_unfinished():
            self.write("Resume one with /resume N, or start with /new CODE.")
        else:
            self.write("Start with /new CODE.")
        while True:
            try:
                line = self.read("> ")
            except EOFError:  # Ctrl-D
                self.write("")
                break
            if line.strip() and not self.command(line):
                break
        if self.screening is not None:
            self.write(
                f"The screening {self.screening.code} is kept; "
                "`prescreen console` and /resume continue it."
            )
