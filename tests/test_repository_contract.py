"""One contract for every repository: the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows import (
    Answer,
    Decide,
    Decision,
    GoBack,
    Protocol,
    ScreeningState,
    Status,
    start,
    step,
)
from reports.chain import verify_entries
from storage.records import CodeTaken, DuplicateUpdate, Role, Screening, Staff, StaleWrite
from storage.repository import Repository
from tests.flows_helpers import ELIGIBLE_WOMAN, parsed

ALICE = 1001
BOB = 1002


def begin(
    repo: Repository,
    seed: Protocol,
    code: str = "S-001",
    actor: int = ALICE,
    update_id: int | None = None,
) -> Screening:
    return repo.create_screening(code, seed, start(seed), actor=actor, update_id=update_id)


def answer(
    repo: Repository,
    seed: Protocol,
    screening: Screening,
    text: str | None = None,
    *,
    update_id: int | None = None,
    reason: str | None = None,
    actor: int = ALICE,
) -> Screening:
    qid = screening.state.at
    raw = text if text is not None else ELIGIBLE_WOMAN[qid]
    event = Answer(qid, parsed(seed, qid, raw).value)
    result = step(seed, screening.state, event)
    assert result.rejected is None
    return repo.record_step(
        screening, event, result, actor=actor, raw_text=raw, reason=reason, update_id=update_id
    )


def answer_all(
    repo: Repository, seed: Protocol, screening: Screening, **overrides: str
) -> Screening:
    texts = {**ELIGIBLE_WOMAN, **overrides}
    while not screening.state.finished:
        screening = answer(repo, seed, screening, texts[screening.state.at])
    return screening


def same_state(a: ScreeningState, b: ScreeningState) -> None:
    assert (a.at, dict(a.answers), dict(a.retired), dict(a.decisions), a.revisiting) == (
        b.at,
        dict(b.answers),
        dict(b.retired),
        dict(b.decisions),
        b.revisiting,
    )


def test_staff(repo: Repository) -> None:
    assert repo.get_staff(ALICE) is None
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_staff(Staff(BOB, "Bob", Role.INVESTIGATOR, site="Ward 3"))
    assert repo.get_staff(BOB) == Staff(BOB, "Bob", Role.INVESTIGATOR, True, "Ward 3")
    repo.save_staff(Staff(ALICE, "Alice L.", Role.ADMIN, active=False))
    assert repo.get_staff(ALICE) == Staff(ALICE, "Alice L.", Role.ADMIN, False)
    assert [s.display_name for s in repo.list_staff()] == ["Alice L.", "Bob"]


def test_current_screening_survives_staff_edits(repo: Repository, seed: Protocol) -> None:
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    s = begin(repo, seed)
    repo.set_current_screening(ALICE, s.id)
    assert repo.get_staff(ALICE) == Staff(ALICE, "Alice", Role.COORDINATOR, True, None, s.id)
    repo.save_staff(Staff(ALICE, "Alice B.", Role.COORDINATOR))
    assert repo.get_staff(ALICE).current_screening_id == s.id  # type: ignore[union-attr]
    repo.set_current_screening(ALICE, None)
    assert repo.get_staff(ALICE).current_screening_id is None  # type: ignore[union-attr]


def test_the_conversation_is_kept_with_the_staff_member(repo: Repository) -> None:
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_conversation(ALICE, '{"phase": {"kind": "awaiting_code"}}')
    assert repo.visitor(ALICE, 1).staff.conversation == (  # type: ignore[union-attr]
        '{"phase": {"kind": "awaiting_code"}}'
    )
    repo.save_staff(Staff(ALICE, "Alice B.", Role.INVESTIGATOR))  # an edit keeps it
    assert repo.get_staff(ALICE).conversation is not None  # type: ignore[union-attr]
    repo.save_conversation(ALICE, None)
    assert repo.get_staff(ALICE).conversation is None  # type: ignore[union-attr]
    repo.save_conversation(999, "{}")  # not staff: nothing to keep it with
    assert repo.get_staff(999) is None


def test_visitor_reads_staff_current_screening_and_redelivery_at_once(
    repo: Repository, seed: Protocol
) -> None:
    stranger = repo.visitor(999, 1)
    assert stranger.staff is None and stranger.current is None and not stranger.seen
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR, site="Ward 3"))
    fresh = repo.visitor(ALICE, 1)
    assert fresh.staff == Staff(ALICE, "Alice", Role.COORDINATOR, True, "Ward 3")
    assert fresh.current is None and not fresh.seen
    s = begin(repo, seed)
    repo.set_current_screening(ALICE, s.id)
    moved = repo.record_step(
        s,
        Answer(s.state.at, True),
        step(seed, s.state, Answer(s.state.at, True)),
        actor=ALICE,
        update_id=41,
    )
    visit = repo.visitor(ALICE, 41)
    assert visit.seen and visit.current == moved == repo.get_screening(s.id)
    assert visit.staff is not None and visit.staff.current_screening_id == s.id
    assert not repo.visitor(ALICE, 42).seen
    closed = repo.close(moved, "cancelled", actor=BOB, reason="test")  # closed by another
    assert repo.visitor(ALICE, 42).current == closed  # whatever its state
    assert repo.visitor(999, 41).seen  # a stranger's redelivery is recognised too


def test_protocol_versions_round_trip_by_hash(repo: Repository, seed: Protocol) -> None:
    assert repo.load_protocol(seed.digest) is None
    repo.save_protocol(seed)
    repo.save_protocol(seed)  # idempotent
    loaded = repo.load_protocol(seed.digest)
    assert loaded == seed and loaded is not None and loaded.digest == seed.digest


def test_create_and_find(repo: Repository, seed: Protocol) -> None:
    created = begin(repo, seed)
    assert created.status == "in_progress" and created.unfinished
    assert created.protocol_digest == seed.digest
    assert repo.load_protocol(seed.digest) == seed  # the version a screening uses is kept
    found = repo.find_screening("S-001")
    assert found is not None and found.id == created.id
    same_state(found.state, start(seed))
    assert repo.get_screening(created.id) == found
    assert repo.find_screening("nope") is None
    with pytest.raises(CodeTaken):
        begin(repo, seed)


def test_timestamps_are_aware_utc(repo: Repository, seed: Protocol) -> None:
    s = answer(repo, seed, begin(repo, seed))
    for moment in (
        s.created_at,
        s.updated_at,
        repo.answers(s.id)[0].given_at,
        repo.audit_events(s.code)[0].at,
    ):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def test_recording_answers_persists_the_state(repo: Repository, seed: Protocol) -> None:
    s = begin(repo, seed)
    for _ in range(5):
        event = Answer(s.state.at, parsed(seed, s.state.at, ELIGIBLE_WOMAN[s.state.at]).value)
        result = step(seed, s.state, event)
        s = repo.record_step(s, event, result, actor=ALICE, raw_text=ELIGIBLE_WOMAN[s.state.at])
        same_state(s.state, result.state)
        reread = repo.get_screening(s.id)
        assert reread is not None
        same_state(reread.state, result.state)
    assert s.state.at == "extramedullary" and s.row_version == 6
    history = repo.answers(s.id)
    assert [(a.question_id, a.raw_text, a.status) for a in history][:2] == [
        ("consent_signed", "yes", "active"),
        ("willing_to_comply", "yes", "active"),
    ]


def test_complete_screening_and_statuses(repo: Repository, seed: Protocol) -> None:
    eligible = answer_all(repo, seed, begin(repo, seed, "S-1"))
    assert eligible.status == "eligible"
    excluded = answer_all(repo, seed, begin(repo, seed, "S-2"), age="90")
    assert excluded.status == "ineligible" and excluded.state.at == "excluded"
    review = answer_all(repo, seed, begin(repo, seed, "S-3"), anc="0.5")
    assert review.status == "needs_review"
    assert [s.code for s in repo.waiting("needs_review")] == ["S-3"]


def test_waiting_lists_one_coordinators_screenings_longest_waiting_first(
    repo: Repository, seed: Protocol
) -> None:
    first = answer_all(repo, seed, begin(repo, seed, "P-1"), lvef="unknown")
    answer_all(repo, seed, begin(repo, seed, "P-2", actor=BOB), lvef="unknown")
    answer_all(repo, seed, begin(repo, seed, "P-3"), spo2="unknown")
    assert first.status == "pending"
    assert [s.code for s in repo.waiting("pending", created_by=ALICE)] == ["P-1", "P-3"]
    assert [s.code for s in repo.waiting("pending")] == ["P-1", "P-2", "P-3"]
    assert repo.waiting("needs_review", created_by=ALICE) == []


def test_a_notice_is_sent_once_when_due(repo: Repository, seed: Protocol) -> None:
    s = begin(repo, seed)
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    later = repo.add_notice(s.id, ALICE, "reminder", now + timedelta(days=1), sent=False)
    due = repo.add_notice(s.id, ALICE, "reminder", now - timedelta(minutes=1), sent=False)
    told = repo.add_notice(s.id, BOB, "review", now, sent=True)
    assert told.sent_at is not None and due.sent_at is None
    assert [n.id for n in repo.due_notices(now, "reminder")] == [due.id]
    assert repo.claim_notice(due.id) is True
    assert repo.claim_notice(due.id) is False  # another process got there first
    assert repo.due_notices(now, "reminder") == []
    assert [n.id for n in repo.due_notices(now + timedelta(days=2), "reminder")] == [later.id]
    assert [(n.kind, n.telegram_id) for n in repo.notices(s.id)] == [
        ("reminder", ALICE),
        ("reminder", ALICE),
        ("review", BOB),
    ]


def test_correction_supersedes_with_reason(repo: Repository, seed: Protocol) -> None:
    s = answer_all(repo, seed, begin(repo, seed))
    event = GoBack("age")
    s = repo.record_step(s, event, step(seed, s.state, event), actor=ALICE)
    s = answer(repo, seed, s, "46", reason="transcription error: 45 was the previous visit")
    assert s.state.at == "eligible"
    ages = [a for a in repo.answers(s.id) if a.question_id == "age"]
    assert [(a.raw_text, a.status) for a in ages] == [("45", "superseded"), ("46", "active")]
    assert ages[0].change_reason == "transcription error: 45 was the previous visit"
    corrected = [e for e in repo.audit_events(s.code) if e.kind == "answer_corrected"]
    assert corrected[0].payload["previous_normalised"] == "45 years"
    assert corrected[0].payload["normalised"] == "46 years"
    assert corrected[0].payload["reason"].startswith("transcription error")


def test_retired_answers_are_kept(repo: Repository, seed: Protocol) -> None:
    s = answer_all(repo, seed, begin(repo, seed))
    event = GoBack("sex")
    s = repo.record_step(s, event, step(seed, s.state, event), actor=ALICE)
    s = answer(repo, seed, s, "male", reason="wrong subject sheet")
    assert set(s.state.retired) == {"childbearing_potential", "pregnancy_test"}
    statuses = {a.question_id: a.status for a in repo.answers(s.id)}
    assert statuses["pregnancy_test"] == "retired"
    assert any(e.kind == "answer_retired" for e in repo.audit_events(s.code))


def test_decisions(repo: Repository, seed: Protocol) -> None:
    s = answer_all(repo, seed, begin(repo, seed), platelets="60")
    event = Decide(Decision("I8.2", True, "collection feasible"))
    s = repo.record_step(s, event, step(seed, s.state, event), actor=BOB)
    assert s.status == "eligible"
    assert s.state.decisions["I8.2"] == Decision("I8.2", True, "collection feasible")
    back = GoBack("platelets")
    s = repo.record_step(s, back, step(seed, s.state, back), actor=ALICE)
    s = answer(repo, seed, s, "40", reason="lab re-run")
    assert s.status == "needs_review" and s.state.decisions == {}


def test_audit_trails_of_several_screenings_at_once(repo: Repository, seed: Protocol) -> None:
    a = answer(repo, seed, answer(repo, seed, begin(repo, seed, "S-010")))
    b = answer(repo, seed, begin(repo, seed, "S-011"))
    begin(repo, seed, "S-012")  # not asked for
    trails = repo.audit_trails(["S-011", "S-010", "S-404"])
    assert list(trails) == ["S-011", "S-010", "S-404"]
    assert trails["S-010"] == repo.audit_events(a.code) and len(trails["S-010"]) > 2
    assert trails["S-011"] == repo.audit_events(b.code)
    assert [e.seq for e in trails["S-011"]] == list(range(1, len(trails["S-011"]) + 1))
    assert trails["S-404"] == [] and repo.audit_trails([]) == {}


def test_stale_write_is_refused_and_writes_nothing(repo: Repository, seed: Protocol) -> None:
    s = begin(repo, seed)
    newer = answer(repo, seed, s)
    events = len(repo.audit_events(s.code))
    with pytest.raises(StaleWrite):
        answer(repo, seed, s, "no")  # based on the version before ``newer``
    assert len(repo.audit_events(s.code)) == events
    assert repo.get_screening(s.id) == newer


def test_duplicate_update_records_nothing(repo: Repository, seed: Protocol) -> None:
    s = answer(repo, seed, begin(repo, seed, update_id=10), update_id=11)
    assert repo.seen_update(11) and not repo.seen_update(12)
    with pytest.raises(DuplicateUpdate):
        answer(repo, seed, s, update_id=11)
    with pytest.raises(DuplicateUpdate):
        begin(repo, seed, "S-OTHER", update_id=10)
    assert repo.find_screening("S-OTHER") is None
    assert len(repo.answers(s.id)) == 1


def test_resume_list(repo: Repository, seed: Protocol) -> None:
    a1 = begin(repo, seed, "A-1")
    begin(repo, seed, "B-1", actor=BOB)
    a2 = begin(repo, seed, "A-2")
    answer(repo, seed, a1)  # most recent activity
    done = answer_all(repo, seed, a2)
    repo.close(
        done, "signed", actor=ALICE, reason="I confirm these answers reflect the source documents"
    )
    assert [s.code for s in repo.unfinished(ALICE)] == ["A-1"]
    assert [s.code for s in repo.unfinished(BOB)] == ["B-1"]
    a3 = begin(repo, seed, "A-3")
    assert [s.code for s in repo.unfinished(ALICE)] == ["A-3", "A-1"]
    assert [s.code for s in repo.unfinished(ALICE, limit=1)] == [a3.code]


def test_close(repo: Repository, seed: Protocol) -> None:
    s = answer(repo, seed, begin(repo, seed))
    closed = repo.close(s, "cancelled", actor=ALICE, reason="consent withdrawn")
    assert closed.status == "cancelled" and not closed.unfinished
    assert (closed.close_kind, closed.close_reason, closed.closed_by) == (
        "cancelled",
        "consent withdrawn",
        ALICE,
    )
    assert repo.get_screening(s.id) == closed  # what close returns is what is stored
    with pytest.raises(StaleWrite):
        repo.close(s, "signed", actor=ALICE)
    assert repo.audit_events(s.code)[-1].kind == "screening_cancelled"


def current_of(repo: Repository, telegram_id: int) -> int | None:
    staff = repo.get_staff(telegram_id)
    assert staff is not None
    return staff.current_screening_id


def test_the_creator_works_on_a_new_screening(repo: Repository, seed: Protocol) -> None:
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    first = begin(repo, seed, "S-1", update_id=1)
    assert current_of(repo, ALICE) == first.id
    assert repo.visitor(ALICE, 2).current == first
    second = begin(repo, seed, "S-2")
    assert current_of(repo, ALICE) == second.id
    # Nothing written, nothing changed: a taken code, a redelivered update.
    with pytest.raises(CodeTaken):
        begin(repo, seed, "S-1")
    with pytest.raises(DuplicateUpdate):
        begin(repo, seed, "S-3", update_id=1)
    assert current_of(repo, ALICE) == second.id
    begin(repo, seed, "S-4", actor=BOB)  # not a staff member: no one's current screening
    assert current_of(repo, ALICE) == second.id and repo.get_staff(BOB) is None


def test_closing_leaves_the_closer_without_it(repo: Repository, seed: Protocol) -> None:
    repo.save_staff(Staff(ALICE, "Alice", Role.COORDINATOR))
    repo.save_staff(Staff(BOB, "Bob", Role.INVESTIGATOR))
    shared = begin(repo, seed, "S-1")
    repo.set_current_screening(BOB, shared.id)
    with pytest.raises(StaleWrite):  # refused: nothing changes
        repo.close(replace(shared, row_version=0), "cancelled", actor=ALICE, reason="x")
    assert current_of(repo, ALICE) == shared.id
    closed = repo.close(shared, "cancelled", actor=ALICE, reason="duplicate")
    assert current_of(repo, ALICE) is None
    assert current_of(repo, BOB) == shared.id  # the bot treats a closed one as none
    assert repo.visitor(BOB, 1).current == closed
    # Closing a screening other than one's current one keeps the current one.
    mine = begin(repo, seed, "S-2")
    other = begin(repo, seed, "S-3", actor=BOB)
    repo.set_current_screening(ALICE, mine.id)
    repo.close(other, "cancelled", actor=ALICE, reason="entered twice")
    assert current_of(repo, ALICE) == mine.id


def test_in_range(repo: Repository, seed: Protocol) -> None:
    made = [begin(repo, seed, f"R-{i}") for i in range(5)]
    start_at, end_at = made[1].created_at, made[4].created_at
    assert [s.code for s in repo.in_range(start_at, end_at)] == ["R-1", "R-2", "R-3"]
    far = datetime(2000, 1, 1, tzinfo=UTC)
    assert list(repo.in_range(far, far + timedelta(days=1))) == []


def test_audit_chain_verifies(repo: Repository, seed: Protocol) -> None:
    s = answer_all(repo, seed, begin(repo, seed), age="12")
    events = repo.audit_events(s.code)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "screening_started"
    assert events[-1].payload["outcome"] == {
        "at": "excluded",
        "status": Status.INELIGIBLE.value,
        "excluded_by": ["I3"],
    }
    report = verify_entries(s.code, events)
    assert report.ok and report.checked == len(events) and report.head == events[-1].hash
    assert repo.audited_codes() == [s.code]


def test_site_is_kept(repo: Repository, seed: Protocol) -> None:
    s = repo.create_screening("SITE-1", seed, start(seed), actor=ALICE, site="Ward 3")
    assert s.site == "Ward 3"
    s = answer(repo, seed, s)
    found = repo.find_screening("SITE-1")
    assert s.site == "Ward 3" and found is not None and found.site == "Ward 3"
