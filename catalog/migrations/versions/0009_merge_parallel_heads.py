"""merge the four branches developed side by side on 0004 (OAuth state, access workflow and
audit, exports, catalog metadata and search); none of them touches another's tables

Revision ID: 0009
Revises: 0005, 0006, 0007, 0008
Create Date: 2026-11-28 12:15:00
"""

from __future__ import annotations

revision = "0009"
down_revision = ("0005", "0006", "0007", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
