"""One pass over several trials (``flows.joint``): shared concepts asked once, each trial's
outcome exactly the one it gives alone, and no question asked that no open trial needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import UNKNOWN, AnswerValue, Protocol, ScreeningState, load_catalog, parse_answer
from flows.joint import Pass, answer, concept_conflicts, key_of, screen_together
from flows.loader import BUNDLED_DIR, load_protocol
from flows.values import Unknown
from tests.flows_helpers import ELIGIBLE_WOMAN
from tests.test_outcome_messages import SETTINGS, finish, near_limits
from tests.test_properties import values_for
from tests.test_second_trial import ELIGIBLE as BRIDGE_ELIGIBLE

SEED = load_protocol(BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml")
BRIDGE = load_protocol(BUNDLED_DIR / "thiscart19a_bridge_v1.yaml")
BOTH = (SEED, BRIDGE)


def _eligible(protocol: Protocol, texts: dict[str, str]) -> dict[str, AnswerValue]:
    found: dict[str, AnswerValue] = {}
    for qid, text in texts.items():
        question = protocol.questions_by_id.get(qid)
        parsed = parse_answer(question, text) if question else None
        if parsed is not None and hasattr(parsed, "value"):
            found[key_of(protocol, question)] = parsed.value  # type: ignore[arg-type]
    return found


def charts() -> st.SearchStrategy[dict[str, AnswerValue]]:
    """A patient's chart for both trials, by pool key: a shared concept has one value."""
    eligible = {**_eligible(BRIDGE, BRIDGE_ELIGIBLE), **_eligible(SEED, ELIGIBLE_WOMAN)}
    per_key: dict[str, st.SearchStrategy[AnswerValue]] = {}
    for protocol in BOTH:
        for q in protocol.questions:
            key = key_of(protocol, q)
            if key in per_key:
                continue  # a concept's value is drawn once, from the first trial asking it
            choices = [values_for(q), st.just(UNKNOWN), near_limits(protocol, q)]
            if key in eligible:
                choices += [st.just(eligible[key])] * 6
            per_key[key] = st.one_of(*choices)
    return st.fixed_dictionaries(per_key)


def alone(protocol: Protocol, chart: dict[str, AnswerValue]) -> ScreeningState:
    """The trial screened on its own, answering from the chart."""
    by_question = {
        q.id: chart[key_of(protocol, q)] for q in protocol.questions if key_of(protocol, q) in chart
    }
    return finish(protocol, by_question)


def together(
    protocols: tuple[Protocol, ...], chart: dict[str, AnswerValue]
) -> tuple[Pass, list[str]]:
    """The pass, answering from the chart; and the keys it asked, in order."""
    pool: dict[str, AnswerValue] = {}
    current = screen_together(protocols, pool)
    asked: list[str] = []
    while (asking := current.asking) is not None:
        trial, question = asking
        key = key_of(trial.protocol, question)
        # Never asks what no open trial needs: the asking trial is open and at this question.
        assert not trial.decided and trial.state.at == question.id
        assert key not in pool, f"{key} asked twice"
        asked.append(key)
        current, pool = answer(current, chart[key], pool)
    return current, asked


@SETTINGS
@given(chart=charts())
def test_each_trial_decides_in_the_pass_as_it_does_alone(chart: dict[str, AnswerValue]) -> None:
    joint, asked = together(BOTH, chart)
    for trial in joint.trials:
        own = alone(trial.protocol, chart)
        assert trial.state == own, trial.protocol.id
        assert trial.verdict.status == finish_verdict(trial.protocol, own)
    # Every key asked was needed by a trial that read it, in the trial's own dialog.
    used = {
        key_of(t.protocol, t.protocol.questions_by_id[qid])
        for t in joint.trials
        for qid in (*t.state.answers, *t.state.retired)
    }
    assert set(asked) <= used


def finish_verdict(protocol: Protocol, state: ScreeningState) -> object:
    from flows import verdict_of

    return verdict_of(protocol, state).status


@SETTINGS
@given(chart=charts())
def test_one_trial_in_a_pass_is_that_trial_alone(chart: dict[str, AnswerValue]) -> None:
    for protocol in BOTH:
        joint, asked = together((protocol,), chart)
        own = alone(protocol, chart)
        assert joint.trials[0].state == own
        assert len(asked) == len(own.answers) + len(own.retired)


def test_a_shared_concept_is_asked_once_and_serves_both_trials() -> None:
    chart = {
        **_eligible(BRIDGE, BRIDGE_ELIGIBLE),
        **_eligible(SEED, ELIGIBLE_WOMAN),
    }
    joint, asked = together(BOTH, chart)
    assert asked.count("concept:age_years") == 1
    assert "concept:ecog" in asked and asked.count("concept:ecog") == 1
    # The bridge trial read age from the answer given for the seed trial's question.
    assert "age" in joint.trials[1].state.answers
    # Both eligible (the marrow judgement waits for the investigator in the bridge trial).
    statuses = [t.verdict.status.value for t in joint.trials]
    assert statuses[0] == "eligible" and statuses[1] in {"eligible", "needs_review"}
    # Fewer questions than the two trials alone.
    alone_count = sum(len(alone(p, chart).answers) for p in BOTH)
    assert len(asked) < alone_count


def test_an_excluded_trial_stops_asking_its_own_questions() -> None:
    chart = {
        **_eligible(BRIDGE, BRIDGE_ELIGIBLE),
        **_eligible(SEED, ELIGIBLE_WOMAN),
    }
    chart[key_of(BRIDGE, BRIDGE.questions_by_id["hsct_intention"])] = parse_answer(
        BRIDGE.questions_by_id["hsct_intention"], "no"
    ).value  # type: ignore[union-attr]
    joint, asked = together(BOTH, chart)
    bridge = joint.trials[1]
    assert bridge.verdict.status.value == "ineligible"
    assert [c.criterion_id for c in bridge.verdict.excluded_by] == ["I3"]
    # Its own later questions (weight, creatinine for Cockcroft-Gault) were never asked.
    assert f"{BRIDGE.id}:weight" not in asked and f"{BRIDGE.id}:sao2" not in asked
    # A concept it would have read is still asked for the seed trial, which needs it.
    assert "concept:lvef" in asked


def test_concepts_with_two_meanings_are_refused() -> None:
    data = BRIDGE.model_dump(mode="json", exclude_defaults=True)
    for q in data["questions"]:
        if q["id"] == "weight":
            q["concept"] = "age_years"  # kg, where the seed trial's age_years is years
    other = Protocol.model_validate({**data, "id": "other-trial"})
    problems = concept_conflicts([SEED, other])
    assert problems == [
        "concept age_years: cd19-cart-ball-consolidation question age is a number in years, "
        "but other-trial question weight is a number in kg"
    ]


def test_the_bundled_trials_agree_on_their_concepts() -> None:
    assert concept_conflicts(list(BOTH)) == []
    assert load_catalog().protocols


def test_a_catalogue_whose_trials_disagree_is_refused(tmp_path: Path) -> None:
    text = (BUNDLED_DIR / "thiscart19a_bridge_v1.yaml").read_text(encoding="utf-8")
    text = text.replace("id: thiscart19a-bridge", "id: other-trial", 1)
    text = text.replace("concept: ecog", "concept: age_years", 1)
    (tmp_path / "other.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="but other-trial question ecog is a choice"):
        load_catalog([BUNDLED_DIR, tmp_path])


def test_unknown_is_shared_like_any_answer() -> None:
    chart = {
        **_eligible(BRIDGE, BRIDGE_ELIGIBLE),
        **_eligible(SEED, ELIGIBLE_WOMAN),
    }
    chart["concept:bilirubin_uln"] = UNKNOWN
    chart[f"{BRIDGE.id}:gilbert_or_liver"] = False  # asked: bilirubin may be above 2x ULN
    joint, _ = together(BOTH, chart)
    for trial in joint.trials:
        assert isinstance(trial.state.answers["bilirubin"], Unknown)
    # The bridge trial's marrow judgement also waits for the investigator.
    assert [t.verdict.status.value for t in joint.trials] == ["pending", "needs_review"]
