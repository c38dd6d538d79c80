"""a generation counter the database bumps whenever what policy decisions read changes

``catalog_generation`` holds one row; triggers on every table a query's decision reads
(``catalog.generation.WATCHED``) add one to it in the same transaction as the change, so
a cache keyed by the generation (``catalog.generation.GenerationCache``) cannot outlive a
change, whichever code path (or hand-written SQL) made it.

Every transaction that writes a watched table holds the counter's row lock until it commits,
so such transactions run one after another. On PostgreSQL the triggers fire *before* each
statement, so a writer waits for the counter before its statement takes any row lock: two
writers cannot each hold a row the other needs while one waits for the counter (a deadlock
needs locks taken earlier in the same transaction on tables that are not watched). SQLite has
one writer at a time anyway.

SQLite's ``batch_alter_table`` rebuilds a table without its triggers: a later migration
that batch-alters a watched table must create its triggers again, as ``install_triggers``
here does (``tests/catalog/test_generation.py`` checks every watched table has them at
head).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# the tables as of this revision (catalog.generation.WATCHED may grow in later revisions)
WATCHED = (
    "organisations",
    "datasets",
    "dataset_versions",
    "dataset_governance",
    "transfer_instruments",
    "grants",
    "dataset_metadata",
)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION catalog_generation_bump() RETURNS trigger AS $$
BEGIN
    UPDATE catalog_generation SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
VERBS = ("INSERT", "UPDATE", "DELETE")


def install_triggers(tables: tuple[str, ...] = WATCHED) -> None:
    """(Re)create the bump triggers of ``tables``; idempotent."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in tables:
            op.execute(f"DROP TRIGGER IF EXISTS catalog_generation_bump ON {table}")
            op.execute(
                f"CREATE TRIGGER catalog_generation_bump BEFORE INSERT OR UPDATE OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT "
                "EXECUTE FUNCTION catalog_generation_bump()"
            )
        return
    for table in tables:
        for verb in VERBS:
            name = f"catalog_generation_{table}_{verb.lower()}"
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(
                f"CREATE TRIGGER {name} AFTER {verb} ON {table} "
                "BEGIN UPDATE catalog_generation SET value = value + 1 WHERE id = 1; END"
            )


def upgrade() -> None:
    op.create_table(
        "catalog_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO catalog_generation (id, value) VALUES (1, 0)")
    install_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS catalog_generation_bump ON {table}")
        op.execute("DROP FUNCTION IF EXISTS catalog_generation_bump()")
    else:
        for table in WATCHED:
            for verb in VERBS:
                op.execute(f"DROP TRIGGER IF EXISTS catalog_generation_{table}_{verb.lower()}")
    op.drop_table("catalog_generation")
