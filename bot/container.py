"""The composition root: builds the engine, repository and protocol catalog from settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from flows import Catalog, load_catalog
from flows.loader import BUNDLED_DIR
from storage.db import Checkpointer, DbEngine, ensure_schema, make_engine
from storage.records import Role, Staff
from storage.repository import Repository
from storage.sql import SqlRepository


@dataclass(frozen=True)
class Container:
    """Everything the bot, the console and the CLI need, wired once."""

    settings: Settings
    engine: DbEngine
    repo: Repository
    catalog: Catalog
    checkpointer: Checkpointer | None = None


def build(settings: Settings, *, serving: bool = False) -> Container:
    """Connect to the database, check its schema and load the protocols.

    With ``serving`` (the bot, as opposed to a CLI command) an SQLite database is checkpointed
    by a background thread (``checkpointer``, to be entered around the serving loop) rather
    than inside commits, so that no answer waits for it.

    SQLite is migrated automatically (nothing to do by hand on a fresh machine); PostgreSQL
    must be migrated with ``prescreen db upgrade`` and an outdated schema is refused. Every
    loaded protocol version is stored so that screenings can always reload theirs; the admins
    named in the settings are made staff.

    Raises:
        storage.db.SchemaOutdated: PostgreSQL schema behind the code.
        flows.ProtocolError: A protocol file is invalid.
        ValueError: ``PRESCREEN_TRIALS`` names a trial no protocol file defines.
    """
    background = serving and settings.is_sqlite and settings.sqlite_checkpoint_seconds > 0
    engine = make_engine(settings.database_url, auto_checkpoint=not background)
    ensure_schema(engine, auto_upgrade=settings.is_sqlite)
    directories = [BUNDLED_DIR]
    if settings.protocols_dir is not None:
        directories.append(settings.protocols_dir)
    catalog = load_catalog(directories).offering(settings.trials)
    repo = SqlRepository(engine)
    for protocol in catalog.protocols:
        repo.save_protocol(protocol)
    for admin_id in settings.admin_ids:
        existing = repo.get_staff(admin_id)
        if existing is None:
            repo.save_staff(Staff(admin_id, f"Admin {admin_id}", Role.ADMIN))
    checkpointer = Checkpointer(engine, settings.sqlite_checkpoint_seconds) if background else None
    return Container(settings, engine, repo, catalog, checkpointer)
