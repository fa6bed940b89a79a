"""What every ``prescreen`` command shares: its groups, plain help, settings, the container.

Each of them fails with one line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand

from bot.container import Container, build
from bot.settings import BadSettings, Settings, load_settings
from storage.db import safe_url, sqlite_file_missing
from storage.records import StorageUnavailable


class PlainUsage(TyperCommand):
    """A command whose usage line names arguments as click does: ``OUT`` and ``[CODE]``.

    Typer writes required arguments in braces (``{out}``), which reads like a placeholder
    left in by mistake.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # typer's vendored click.Context
        """The usage line after the command's name."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def _group(help_text: str, *, add_completion: bool = True) -> typer.Typer:
    # Plain click help: typer's rich panels print a type (`<bool>`, `{out}`) beside every
    # option and take square brackets in help texts for markup.
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=add_completion,
    )


app = _group("Prescreen: pre-screen patients for clinical trials.", add_completion=False)
protocol_app = _group("Validate and inspect protocol files.")
db_app = _group("Database schema (Alembic migrations).")
audit_app = _group("Audit trail checks.")
staff_app = _group("Authorised staff and their roles.")
app.add_typer(protocol_app, name="protocol")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(staff_app, name="staff")

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Protocol YAML file.")]


def settings_or_exit() -> Settings:
    """The settings, or one line per wrong setting and exit status 2."""
    try:
        return load_settings()
    except BadSettings as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None


def fail(message: str, status: int = 2) -> NoReturn:
    """Print one line on stderr and exit: a mistake the operator can fix."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def container_or_exit(*, create: bool = False) -> Container:
    """The composition root for a CLI command.

    Args:
        create: Whether a missing SQLite database may be created; commands that only read
            refuse instead, so that a mistyped URL leaves no empty database behind.
    """
    settings = settings_or_exit()
    missing = None if create else sqlite_file_missing(settings.database_url)
    if missing is not None:
        fail(
            f"no database at {missing} (PRESCREEN_DATABASE_URL); `prescreen db upgrade` or "
            "the bot's start creates it",
            1,
        )
    try:
        return build(settings)
    except StorageUnavailable as exc:
        typer.echo(
            f"error: cannot reach the database {safe_url(settings.database_url)}: {exc}",
            err=True,
        )
        raise typer.Exit(2) from exc
    except Exception as exc:  # a clear message instead of a traceback for set-up problems
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
