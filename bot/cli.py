"""The ``prescreen`` command line: protocol tools, the console screening, the bot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.diagram import mermaid
from flows.loader import check_protocol_file

app = typer.Typer(help="Prescreen: pre-screen patients for clinical trials.", no_args_is_help=True)
protocol_app = typer.Typer(help="Validate and inspect protocol files.", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Protocol YAML file.")]


@protocol_app.command("check")
def protocol_check(file: FileArg) -> None:
    """Validate a protocol: schema, references, order of relevance, reachability, duplicates."""
    protocol, findings = check_protocol_file(file)
    for finding in findings:
        typer.echo(f"{file}: {finding}", err=True)
    if protocol is None or any(f.severity == "error" for f in findings):
        raise typer.Exit(1)
    typer.echo(
        f"{file}: OK — {protocol.label}, {len(protocol.questions)} questions, "
        f"{len(protocol.criteria)} criteria, sha256 {protocol.digest}"
    )


@protocol_app.command("diagram")
def protocol_diagram(file: FileArg) -> None:
    """Print the dialog as a Mermaid state diagram."""
    protocol, findings = check_protocol_file(file)
    if protocol is None or any(f.severity == "error" for f in findings):
        for finding in findings:
            typer.echo(f"{file}: {finding}", err=True)
        raise typer.Exit(1)
    typer.echo(mermaid(protocol))


def main() -> None:
    """Entry point of the ``prescreen`` console script."""
    app()
