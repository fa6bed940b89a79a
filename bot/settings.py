"""Configuration: read once, from the environment and ``.env``, by :func:`load_settings`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"


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
        default="sqlite:///var/prescreen.sqlite3",
        validation_alias=AliasChoices("PRESCREEN_DATABASE_URL", "DATABASE_URL"),
    )
    protocols_dir: Path | None = None
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
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
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


def load_settings(**overrides: Any) -> Settings:
    """Read the settings (environment, then ``.env``), with explicit overrides on top."""
    return Settings(**overrides)
