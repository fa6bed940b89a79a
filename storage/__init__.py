"""Storage: SQLModel tables, repositories, migrations and exporters."""
