"""access workflow: governance metadata, transfer instruments, access requests, delivery
ledger, grant obligations; the audit log becomes append-only in the database

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-28 10:50:00

Append-only audit: a trigger refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) of
``audit_events`` for every database role, the gateway's included. On PostgreSQL the
privileges are revoked from PUBLIC as well; deployments that run migrations as a separate
owner role and the gateway as a role with INSERT/SELECT only get a second, independent
barrier (docs: README "Audit log").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "dataset_governance",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("origin_jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("origin_city", sa.String(length=32), nullable=True),
        sa.Column("provider_entity_id", sa.String(length=64), nullable=False),
        sa.Column("provider_is_ciio", sa.String(length=8), nullable=False),
        sa.Column("dsl_level", sa.String(length=16), nullable=False),
        sa.Column("important_notice_ref", sa.String(length=200), nullable=True),
        sa.Column("collection_purposes", sa.JSON(), nullable=False),
        sa.Column("consented_purposes", sa.JSON(), nullable=False),
        sa.Column("consent_ref", sa.String(length=200), nullable=True),
        sa.Column("separate_consent", sa.Boolean(), nullable=False),
        sa.Column("spi_release", sa.Boolean(), nullable=False),
        sa.Column("pipia_ref", sa.String(length=200), nullable=True),
        sa.Column("legal_basis", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    op.create_table(
        "transfer_instruments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=True),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transfer_instruments_dataset", "transfer_instruments", ["dataset_id"])
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("accept_no_onward_transfer", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_requests_status", "access_requests", ["status", "created_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("provider_org_id", sa.String(length=32), nullable=False),
        sa.Column("consumer_org_id", sa.String(length=32), nullable=False),
        sa.Column("consumer_entity", sa.String(length=64), nullable=False),
        sa.Column("consumer_jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("origin_jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("cross_boundary", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("masks", sa.JSON(), nullable=False),
        sa.Column("instruments", sa.JSON(), nullable=False),
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("pi_subjects", sa.BigInteger(), nullable=False),
        sa.Column("spi_subjects", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deliveries_provider_year", "deliveries", ["provider_org_id", "year"])
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("masks", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("row_filter", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("aggregate_only", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("min_group_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("subject_column", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("version_pin", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("request_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "no_onward_transfer", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    _append_only_audit()


def _append_only_audit() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {verb} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        for column in (
            "no_onward_transfer",
            "request_id",
            "version_pin",
            "subject_column",
            "min_group_size",
            "aggregate_only",
            "row_filter",
            "masks",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_deliveries_provider_year", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_access_requests_status", table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index("ix_transfer_instruments_dataset", table_name="transfer_instruments")
    op.drop_table("transfer_instruments")
    op.drop_table("dataset_governance")
