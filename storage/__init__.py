"""Storage: SQLModel tables, the repository (SQL and an in-memory fake), Alembic migrations.

Persistence only: documents made from what is stored live in ``reports``.
"""

__all__ = ["audit", "clock", "db", "memory", "records", "repository", "sql", "steps", "tables"]
