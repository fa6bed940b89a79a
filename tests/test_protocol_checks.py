from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from flows import ProtocolError, load_catalog, load_protocol
from flows.loader import BUNDLED_DIR, validate_protocol
from tests.conftest import SEED_FILE


def minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "demo",
        "version": "1",
        "title": "Demo",
        "questions": [
            {
                "id": "sex",
                "kind": "choice",
                "text": "Sex?",
                "options": [{"id": "f", "text": "F"}, {"id": "m", "text": "M"}],
            },
            {
                "id": "pregnant",
                "kind": "yes_no",
                "text": "Pregnant?",
                "relevant_if": {"q": "sex", "eq": "f"},
            },
        ],
        "criteria": [
            {
                "id": "E1",
                "number": "1",
                "type": "exclusion",
                "text": "Pregnancy",
                "rule": {"q": "pregnant", "eq": True},
            },
        ],
    }
    data.update(changes)
    return data


def findings(data: dict[str, Any]) -> list[str]:
    _, found = validate_protocol(data)
    return [f"{f.path}: {f.message}" for f in found if f.severity == "error"]


def test_minimal_protocol_is_valid() -> None:
    assert findings(minimal()) == []


def test_unknown_keys_are_rejected() -> None:
    data = minimal()
    data["questions"][0]["colour"] = "red"
    assert findings(data) == ["questions[0].colour: Extra inputs are not permitted"]


def test_undefined_question_in_rule() -> None:
    data = minimal()
    data["criteria"][0]["rule"] = {
        "all": [{"q": "pregnant", "eq": True}, {"q": "nope", "eq": True}]
    }
    assert findings(data) == ["criteria[0].rule: undefined question 'nope'"]


def test_relevance_must_refer_to_an_earlier_question() -> None:
    data = minimal()
    data["questions"].reverse()
    data["questions"][0]["relevant_if"] = {"q": "sex", "eq": "f"}
    assert any("not asked before" in f for f in findings(data))


def test_duplicate_ids() -> None:
    data = minimal()
    data["questions"].append({"id": "sex", "kind": "yes_no", "text": "again"})
    data["criteria"].append(dict(data["criteria"][0]))
    assert findings(data) == [
        "questions[2].id: duplicate question id 'sex'",
        "criteria[1].id: duplicate criterion id 'E1'",
    ]


def test_unreachable_question() -> None:
    data = minimal()
    data["questions"][1]["relevant_if"] = {
        "all": [{"q": "sex", "eq": "f"}, {"q": "sex", "eq": "m"}]
    }
    assert findings(data) == [
        "questions[1].relevant_if: question 'pregnant' is unreachable: "
        "its relevance is false for every possible earlier answer"
    ]


def test_type_errors_in_rules() -> None:
    data = minimal()
    data["criteria"][0]["rule"] = {"q": "sex", "ge": 3}
    assert findings(data) == ["criteria[0].rule: 'ge' compares numbers but 'sex' is choice"]
    data["criteria"][0]["rule"] = {"q": "sex", "eq": "x"}
    assert findings(data) == ["criteria[0].rule: 'x' is not an option of 'sex'"]


def test_a_comparison_has_exactly_one_operator() -> None:
    data = minimal()
    data["criteria"][0]["rule"] = {"q": "pregnant", "eq": True, "ne": False}
    assert "exactly one operator" in findings(data)[0]


def test_identity_is_id_version_and_content_hash(tmp_path: Path) -> None:
    seed = load_protocol(SEED_FILE)
    reformatted = tmp_path / "same.yaml"
    reformatted.write_text(yaml.safe_dump(yaml.safe_load(SEED_FILE.read_text()), indent=4))
    assert load_protocol(reformatted).digest == seed.digest  # formatting is not content
    changed = yaml.safe_load(SEED_FILE.read_text())
    changed["version"] = "1.3"
    changed["criteria"][2]["rule"] = {"q": "age", "between": [18, 80]}
    (tmp_path / "v11.yaml").write_text(yaml.safe_dump(changed, allow_unicode=True))
    catalog = load_catalog([SEED_FILE.parent, tmp_path])
    assert catalog.latest(seed.id) is not None
    assert catalog.latest(seed.id).version == "1.3"  # type: ignore[union-attr]
    assert catalog.by_digest(seed.digest) == seed  # the old version stays loadable
    assert [p.version for p in catalog.current() if p.id == seed.id] == ["1.3"]


def test_load_protocol_raises_with_every_finding(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    data = minimal()
    data["criteria"][0]["rule"] = {"q": "nope", "eq": True}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError) as info:
        load_protocol(bad)
    assert "criterion 'E1', rule (line 5): undefined question 'nope'" in str(info.value)


runner = CliRunner()


def test_cli_check_reports_file_and_field_path(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["protocol", "check", str(SEED_FILE)])
    assert ok.exit_code == 0, ok.output
    assert "26 questions, 13 criteria" in ok.output
    bad = tmp_path / "bad.yaml"
    data = minimal()
    data["criteria"][0]["rule"] = {"q": "nope", "eq": True}
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["protocol", "check", str(bad)])
    assert result.exit_code == 1
    assert (
        f"{bad}: error: criterion 'E1', rule (line 5): undefined question 'nope'" in result.output
    )


def test_cli_diagram_is_mermaid() -> None:
    result = runner.invoke(app, ["protocol", "diagram", str(SEED_FILE)])
    assert result.exit_code == 0
    assert "stateDiagram-v2" in result.output
    assert "sex --> ecog: next [answered]" in result.output
    assert "sex --> excluded: next [excludes]" in result.output
    assert (
        "childbearing_potential --> male_reproductive_potential: next [answered] | "
        "next [!asks_childbearing_potential]"
    ) in result.output
    assert "contraception --> eligible: next [answered & all_met]" in result.output


def test_cli_check_refuses_a_concept_that_means_something_else_elsewhere(tmp_path: Path) -> None:
    """A shared concept is compared with the bundled trials and the file's neighbours."""
    text = (BUNDLED_DIR / "thiscart19a_bridge_v1.yaml").read_text(encoding="utf-8")
    text = text.replace("id: thiscart19a-bridge", "id: other-trial", 1)
    mine = tmp_path / "other.yaml"
    # Body weight declared as the seed trial's LVEF concept (kg where the seed trial means %).
    clash = text.replace("    concept: lvef\n", "", 1).replace(
        "  - id: weight\n    kind: number\n",
        "  - id: weight\n    kind: number\n    concept: lvef\n",
    )
    mine.write_text(clash, encoding="utf-8")
    result = runner.invoke(app, ["protocol", "check", str(mine)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{mine}: error: concept lvef: other-trial question weight is a number in kg, "
        f"but {trial} question lvef is a number in %"
        for trial in ("cd19-cart-ball-consolidation", "thiscart19a-bridge")
    ]
    mine.write_text(text, encoding="utf-8")  # the same concepts as the bundled trial: agreed
    assert runner.invoke(app, ["protocol", "check", str(mine)]).exit_code == 0
