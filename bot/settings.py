"""Configuration: read once, from the environment and ``.env``, by :func:`load_settings`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def default_database_url() -> str:
    """The SQLite file used when no database is configured.

    It lives in the user's data folder (``~/.local/share/prescreen`` on Linux), so that the
    bot, the CLI and the console find the same records whichever folder they are run from.
    """
    return f"sqlite:///{platformdirs.user_data_path('prescreen') / 'prescreen.sqlite3'}"


class Settings(BaseSettings):
    """Every setting of Prescreen; each is documented in ``.env.example`` and the README."""

    # Empty values (as in a copied .env.example) mean "not set": the default applies.
    model_config = SettingsConfigDict(
        env_prefix="PRESCREEN_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
    )

    bot_token: SecretStr | None = None
    database_url: str = Field(
        default_factory=default_database_url,
        validation_alias=AliasChoices("PRESCREEN_DATABASE_URL", "DATABASE_URL"),
    )
    protocols_dir: Path | None = None
    trials: Annotated[list[str], NoDecode] = []
    admin_ids: Annotated[list[int], NoDecode] = []
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    log_level: str = "INFO"
    code_pattern: str = DEFAULT_CODE_PATTERN
    timezone: str = "UTC"
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    console_user_id: int = 0
    sqlite_checkpoint_seconds: float = Field(default=1.0, ge=0)
    export_workers: int = Field(default=0, ge=0)
    max_concurrent_updates: int = Field(default=256, ge=1)
    database_threads: int | None = Field(default=None, ge=0)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, int):
            return [value]
        if not isinstance(value, str):
            return value
        ids = []
        for part in (p.strip() for p in value.replace(";", ",").split(",")):
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ValueError(
                    f"{part!r} is not a Telegram user id; give numbers separated by commas"
                )
            ids.append(int(part))
        return ids

    @field_validator("trials", mode="before")
    @classmethod
    def _split_trials(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; give an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value

    @field_validator("code_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("protocols_dir")
    @classmethod
    def _is_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a folder; create it or leave the setting empty")
        return value

    @property
    def pdf_workers(self) -> int:
        """Processes drawing PDFs in a bulk export: the setting, or one per CPU core."""
        return self.export_workers or os.cpu_count() or 1

    @property
    def db_threads(self) -> int:
        """Threads running database calls off the event loop.

        The setting, else 4 on PostgreSQL (whose every statement is a round trip the loop
        would wait for) and none on SQLite (whose statements take microseconds and whose
        writers queue for one lock anyway).
        """
        if self.database_threads is not None:
            return self.database_threads
        return 0 if self.is_sqlite else 4

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is an SQLite file (migrated automatically at start)."""
        return self.database_url.startswith("sqlite")


class BadSettings(Exception):
    """Settings that cannot be used; the message has one line per wrong setting."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings (environment, then ``.env``), with explicit overrides on top.

    Raises:
        BadSettings: a setting has a value Prescreen cannot use; every such setting is named
            by its environment variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise BadSettings(describe(exc)) from None


def describe(error: ValidationError) -> str:
    """One line per wrong setting, named as it is written in ``.env``."""
    lines = []
    for item in error.errors():
        name = f"PRESCREEN_{str(item['loc'][0]).upper()}" if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return "\n".join(lines)


__all__ = ["LOG_LEVELS", "BadSettings", "Settings", "default_database_url", "load_settings"]
