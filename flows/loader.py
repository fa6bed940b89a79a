"""Loading protocols from YAML: the only I/O the engine does."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from flows.checks import Finding, check_protocol
from flows.joint import concept_conflicts
from flows.schema import Protocol

BUNDLED_DIR = Path(__file__).parent / "protocols"


class ProtocolError(ValueError):
    """A protocol file that cannot be used, with every finding."""

    def __init__(self, source: str, findings: list[Finding]) -> None:
        self.source = source
        self.findings = findings
        lines = "\n".join(f"  {source}: {f}" for f in findings)
        super().__init__(f"invalid protocol {source}:\n{lines}")


def _loc(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"yes_no", "choice", "number", "lab", "all", "any", "not", "compare"}:
            continue  # union tags pydantic adds to the path; not fields of the file
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def validate_protocol(
    data: object, source: str = "<data>"
) -> tuple[Protocol | None, list[Finding]]:
    """Validate parsed YAML data as a protocol, collecting every finding.

    Args:
        data: The parsed YAML document.
        source: Where it came from, for messages.

    Returns:
        The protocol (``None`` when the schema rejects it) and the findings.
    """
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        return None, [Finding(_loc(e["loc"]), e["msg"]) for e in exc.errors()]
    return protocol, check_protocol(protocol)


_STEP = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")
# Pydantic's error paths leave out the key of a rule's list of parts (`rule.all[1]` is
# reported as `rule[1]`), so the walkers below step through it.
_LISTS = ("all", "any")
_OPERATORS = "eq, ne, in, lt, le, gt, ge, between (with of: uln for multiples of the ULN)"


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def _line(node: yaml.Node | None, steps: list[str | int]) -> int | None:
    """The 1-based line of the deepest node of ``steps`` that exists in the YAML tree."""
    line = None
    for step in steps:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and isinstance(step, int):  # all:/any: lists
            node = next((v for k, v in node.value if k.value in _LISTS), None)
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def _at(data: object, steps: list[str | int]) -> object:
    for step in steps:
        if isinstance(data, dict) and isinstance(step, int):  # all:/any: lists
            data = next((v for k, v in data.items() if k in _LISTS), None)
        if isinstance(data, list) and isinstance(step, int):
            if step >= len(data):
                return None
            data = data[step]
        elif isinstance(data, dict) and step in data:
            data = data[step]
        else:
            return None
    return data


def _locate(finding: Finding, data: object, tree: yaml.Node | None) -> Finding:
    """Name a finding's place as a reader of the file would: by id and line.

    ``questions[23].relevant_if`` becomes ``question 'hb', relevant_if (line 120)``.
    """
    steps = _steps(finding.path)
    if not steps:
        return finding
    where = finding.path
    kinds = {"questions": "question", "criteria": "criterion", "derived": "derived value"}
    if len(steps) >= 2 and steps[0] in kinds and isinstance(steps[1], int):
        item = _at(data, steps[:2])
        ident = item.get("id") if isinstance(item, dict) else None
        kind = kinds[str(steps[0])]
        rest = finding.path.split("]", 1)[1].lstrip(".")
        where = f"{kind} {ident!r}" if ident else f"{kind} {steps[1] + 1}"
        where += f", {rest}" if rest else ""
    line = _line(tree, steps)
    if line is not None:
        where += f" (line {line})"
    message = finding.message
    parent = _at(data, steps[:-1])
    if message == "Extra inputs are not permitted" and isinstance(parent, dict):
        message = (
            f"unknown operator {steps[-1]!r}; use one of {_OPERATORS}"
            if "q" in parent
            else f"unknown field {steps[-1]!r}"
        )
    return Finding(where, message, finding.severity)


def check_protocol_file(path: Path) -> tuple[Protocol | None, list[Finding]]:
    """Read and check a protocol file without raising for its content.

    Findings name questions and criteria by their id and give the line in the file.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Finding(
                "(file)",
                f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} "
                "cannot be decoded; save the file as UTF-8",
            )
        ]
    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        return None, [Finding("(file)", f"not valid YAML: {exc}")]
    protocol, findings = validate_protocol(data, str(path))
    return protocol, [_locate(f, data, tree) for f in findings]


def load_protocol(path: Path) -> Protocol:
    """Load a protocol file.

    Raises:
        ProtocolError: The file is not a valid protocol (warnings do not raise).
        OSError: The file cannot be read.
    """
    protocol, findings = check_protocol_file(path)
    errors = [f for f in findings if f.severity == "error"]
    if protocol is None or errors:
        raise ProtocolError(str(path), errors)
    return protocol


@dataclass(frozen=True)
class Catalog:
    """The protocols a deployment serves, every version addressable by its content hash."""

    protocols: tuple[Protocol, ...]
    offered: frozenset[str] | None = None
    """The trials new screenings may start on (``None``: every one loaded); the others' stored
    screenings still read their protocol."""

    def by_digest(self, digest: str) -> Protocol | None:
        """The protocol version with this content hash."""
        return next((p for p in self.protocols if p.digest == digest), None)

    def latest(self, protocol_id: str) -> Protocol | None:
        """The newest version of a trial's protocol (the last one loaded wins on ties)."""
        versions = [p for p in self.protocols if p.id == protocol_id]
        return max(versions, key=lambda p: _version_key(p.version)) if versions else None

    def current(self) -> tuple[Protocol, ...]:
        """The newest version of each offered trial, for starting new screenings."""
        ids = dict.fromkeys(p.id for p in self.protocols)
        return tuple(
            p
            for pid in ids
            if (self.offered is None or pid in self.offered) and (p := self.latest(pid))
        )

    def offering(self, trial_ids: Iterable[str]) -> Catalog:
        """The same protocols, new screenings limited to ``trial_ids`` (all when empty).

        Raises:
            ValueError: An id that no loaded protocol has.
        """
        wanted = frozenset(trial_ids)
        known = {p.id for p in self.protocols}
        if wanted - known:
            raise ValueError(
                f"PRESCREEN_TRIALS names {', '.join(sorted(wanted - known))}, which no protocol "
                f"file defines; loaded: {', '.join(sorted(known))}"
            )
        return Catalog(self.protocols, wanted or None)


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple(
        (int(part), "") if part.isdecimal() else (-1, part)
        for part in version.replace("-", ".").split(".")
    )


def load_catalog(directories: Iterable[Path] = (BUNDLED_DIR,)) -> Catalog:
    """Load every ``*.yaml`` protocol in the given directories (bundled ones by default).

    Raises:
        ProtocolError: A protocol file is invalid.
        ValueError: Two protocols use a ``concept`` with different meanings.
    """
    protocols: dict[str, Protocol] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            protocol = load_protocol(path)
            protocols.setdefault(protocol.digest, protocol)
    conflicts = concept_conflicts(list(protocols.values()))
    if conflicts:
        raise ValueError("protocols disagree on a shared concept: " + "; ".join(conflicts))
    return Catalog(tuple(protocols.values()))
