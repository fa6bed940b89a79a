"""Loading protocols from YAML: the only I/O the engine does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from flows.checks import Finding, check_protocol
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


def check_protocol_file(path: Path) -> tuple[Protocol | None, list[Finding]]:
    """Read and check a protocol file without raising for its content."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return None, [Finding("(file)", f"not valid YAML: {exc}")]
    return validate_protocol(data, str(path))


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

    def by_digest(self, digest: str) -> Protocol | None:
        """The protocol version with this content hash."""
        return next((p for p in self.protocols if p.digest == digest), None)

    def latest(self, protocol_id: str) -> Protocol | None:
        """The newest version of a trial's protocol (the last one loaded wins on ties)."""
        versions = [p for p in self.protocols if p.id == protocol_id]
        return max(versions, key=lambda p: _version_key(p.version)) if versions else None

    def current(self) -> tuple[Protocol, ...]:
        """The newest version of each trial, for starting new screenings."""
        ids = dict.fromkeys(p.id for p in self.protocols)
        return tuple(p for pid in ids if (p := self.latest(pid)) is not None)


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple(
        (int(part), "") if part.isdecimal() else (-1, part)
        for part in version.replace("-", ".").split(".")
    )


def load_catalog(directories: Iterable[Path] = (BUNDLED_DIR,)) -> Catalog:
    """Load every ``*.yaml`` protocol in the given directories (bundled ones by default)."""
    protocols: dict[str, Protocol] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            protocol = load_protocol(path)
            protocols.setdefault(protocol.digest, protocol)
    return Catalog(tuple(protocols.values()))
