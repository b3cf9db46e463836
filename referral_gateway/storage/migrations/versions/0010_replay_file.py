"""replay file: the files a replay (backfill) has finished, so that a second run skips them

Revision ID: 0010_replay_file
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

from referral_gateway.storage.types import UtcDateTime

revision = '0010_replay_file'
down_revision = '0001_spine'  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'replay_file',
        sa.Column('file_key', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=2000), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('messages', sa.Integer(), nullable=False),
        sa.Column('finished_at', UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('file_key'),
    )


def downgrade() -> None:
    op.drop_table('replay_file')
