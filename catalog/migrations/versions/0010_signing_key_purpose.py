"""signing keys get a purpose: access tokens and OIDC ID tokens are signed by separate keys

Existing keys signed access tokens (and, before this revision, ID tokens too); they become
``access`` keys. The first ID token after the upgrade creates the first ``id`` key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=8), server_default="access", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("purpose")
