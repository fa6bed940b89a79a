"""Scratch databases for the benchmarks, removed when a benchmark is done with them.

A SQLite file in a folder of its own, or a schema of its own on PRESCREEN_BENCH_POSTGRES_URL.
Both go when the ``with`` block ends, however it ends: a storage run leaves a database of
about 200 MB behind otherwise, and repeated runs fill a small disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from storage.db import make_engine

__all__ = ["postgres_schema", "scratch_engine"]


@contextmanager
def scratch_engine(db: str, **engine_options: Any) -> Iterator[Engine]:
    """An engine on a new, empty database, disposed and its database removed on exit.

    Args:
        db: ``sqlite`` (a file in a new temporary folder) or ``postgres`` (a new schema on
            PRESCREEN_BENCH_POSTGRES_URL, first in the engine's search path).
        **engine_options: Passed on to :func:`storage.db.make_engine`.

    Yields:
        The engine; its database holds no tables yet.
    """
    if db == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="prescreen-bench-"))
        try:
            engine = make_engine(f"sqlite:///{folder / 'bench.sqlite3'}", **engine_options)
            try:
                yield engine
            finally:
                engine.dispose()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    with postgres_schema(
        os.environ["PRESCREEN_BENCH_POSTGRES_URL"], "bench_", **engine_options
    ) as engine:
        yield engine


@contextmanager
def postgres_schema(url: str, prefix: str, **engine_options: Any) -> Iterator[Engine]:
    """An engine on a new schema of the database at ``url``, dropped on exit.

    Args:
        url: The PostgreSQL database's URL.
        prefix: The start of the schema's name (a random suffix follows), which tells whose
            schema a leftover is.
        **engine_options: Passed on to :func:`storage.db.make_engine`.

    Yields:
        The engine, the new schema first in its search path.
    """
    schema = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    try:
        with admin.begin() as c:
            c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine = make_engine(
            url, connect_args={"options": f"-csearch_path={schema}"}, **engine_options
        )
        try:
            yield engine
        finally:
            # Disposed first: a pooled connection still open would hold the schema's locks.
            engine.dispose()
            with admin.begin() as c:
                c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
