"""Alembic environment: the engine is handed in by ``catalog.database``."""

from __future__ import annotations

from alembic import context

from catalog.models import Base
from catalog.users import User  # noqa: F401  (registers the users/OAuth tables)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
