"""catalog metadata, search index and glossary

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-28 10:50:00
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None

SEED = Path(__file__).resolve().parents[2] / "glossary_seed.json"


def upgrade() -> None:
    op.create_table(
        'dataset_metadata',
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('title', sa.JSON(), nullable=False),
        sa.Column('description', sa.JSON(), nullable=False),
        sa.Column('keywords', sa.JSON(), nullable=False),
        sa.Column('publisher', sa.JSON(), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('update_frequency', sa.String(length=16), nullable=True),
        sa.Column('contact', sa.JSON(), nullable=False),
        sa.Column('columns', sa.JSON(), nullable=False),
        sa.Column('discoverable', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id']),
        sa.PrimaryKeyConstraint('dataset_id'),
    )
    op.create_table(
        'search_entries',
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('stamp', sa.String(length=512), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('facets', sa.JSON(), nullable=False),
        sa.Column('sort_key', sa.String(length=300), nullable=False),
        sa.Column('quality_score', sa.Float(), nullable=True),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id']),
        sa.PrimaryKeyConstraint('dataset_id'),
    )
    op.create_table(
        'search_terms',
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('term', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id']),
        sa.PrimaryKeyConstraint('dataset_id', 'term'),
    )
    op.create_index('ix_search_terms_term', 'search_terms', ['term'], unique=False)
    glossary = op.create_table(
        'glossary_terms',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('concept', sa.String(length=64), nullable=False),
        sa.Column('term', sa.String(length=100), nullable=False),
        sa.Column('lang', sa.String(length=8), nullable=False),
        sa.Column('normalised', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('concept', 'normalised', name='uq_glossary_concept_term'),
    )
    op.create_index('ix_glossary_terms_concept', 'glossary_terms', ['concept'], unique=False)
    op.bulk_insert(glossary, _seed_rows())


def _seed_rows() -> list[dict[str, object]]:
    """The seed glossary; ``normalised`` here is only the uniqueness key (search normalises
    each term itself, with OpenCC), so NFKC + case folding is enough."""
    concepts = json.loads(SEED.read_text(encoding="utf-8"))["concepts"]
    now = datetime.now(UTC)
    return [
        {
            'id': uuid.uuid4().hex,
            'concept': concept,
            'term': term,
            'lang': lang,
            'normalised': unicodedata.normalize("NFKC", term).casefold(),
            'created_by': 'seed',
            'created_at': now,
        }
        for concept, terms in concepts.items()
        for term, lang in terms
    ]


def downgrade() -> None:
    op.drop_index('ix_glossary_terms_concept', table_name='glossary_terms')
    op.drop_table('glossary_terms')
    op.drop_index('ix_search_terms_term', table_name='search_terms')
    op.drop_table('search_terms')
    op.drop_table('search_entries')
    op.drop_table('dataset_metadata')
