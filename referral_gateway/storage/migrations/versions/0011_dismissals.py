"""not_assault_mark: a youth worker's "not an assault" mark on a candidate (its reason, an
encrypted note, who and when); the referral's status becomes not_assault

Revision ID: 0011_dismissals
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

from referral_gateway.storage.types import UtcDateTime

revision = '0011_dismissals'
down_revision = '0001_spine'  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'not_assault_mark',
        sa.Column('referral_id', sa.String(length=36), nullable=False),
        sa.Column('site', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('note_enc', sa.LargeBinary(), nullable=True),
        sa.Column('key_id', sa.String(length=32), nullable=True),
        sa.Column('marked_by', sa.String(length=36), nullable=False),
        sa.Column('marked_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id']),
        sa.PrimaryKeyConstraint('referral_id'),
    )
    op.create_index('ix_not_assault_mark_site', 'not_assault_mark', ['site'])
    op.create_index('ix_not_assault_mark_marked_at', 'not_assault_mark', ['marked_at'])


def downgrade() -> None:
    op.drop_index('ix_not_assault_mark_marked_at', table_name='not_assault_mark')
    op.drop_index('ix_not_assault_mark_site', table_name='not_assault_mark')
    op.drop_table('not_assault_mark')
