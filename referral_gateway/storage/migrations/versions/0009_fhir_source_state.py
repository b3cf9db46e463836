"""fhir source state: where a poll cut short by its page limit carries on, and how far
the search for diagnoses coded after their Encounter was read has got

Revision ID: 0009_fhir_source_state
Revises: 0002_fhir
"""

import sqlalchemy as sa
from alembic import op

revision = '0009_fhir_source_state'
down_revision = '0002_fhir'  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('fhir_poll_state', sa.Column('resume_url', sa.String(length=2000), nullable=True))
    op.add_column('fhir_poll_state',
                  sa.Column('pending_watermark', sa.String(length=40), nullable=True))
    op.add_column('fhir_poll_state',
                  sa.Column('related_watermark', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('fhir_poll_state', 'related_watermark')
    op.drop_column('fhir_poll_state', 'pending_watermark')
    op.drop_column('fhir_poll_state', 'resume_url')
