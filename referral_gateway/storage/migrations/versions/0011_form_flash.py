"""form flash: refused forms (encrypted) waiting a few minutes for their page's next GET

Revision ID: 0011_form_flash
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

from referral_gateway.storage.types import UtcDateTime

revision = '0011_form_flash'
down_revision = '0001_spine'  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'form_flash',
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('page', sa.String(length=200), nullable=False),
        sa.Column('expires_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('payload_enc', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('session_hash', 'page'),
    )


def downgrade() -> None:
    op.drop_table('form_flash')
