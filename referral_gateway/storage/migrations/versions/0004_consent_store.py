"""consent store: consent records (free text encrypted) and the hash-chained audit trail

Revision ID: 0004_consent_store
Revises: 0003_web
"""

from alembic import op
import sqlalchemy as sa


import referral_gateway.storage.types


revision = '0004_consent_store'
down_revision = '0003_web'
branch_labels = None
depends_on = None

UTC = referral_gateway.storage.types.UtcDateTime


def upgrade() -> None:
    op.create_table('consent_record',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', UTC(timezone=True), nullable=False),
    sa.Column('giver', sa.String(length=40), nullable=True),
    sa.Column('young_person_age', sa.Integer(), nullable=True),
    sa.Column('not_approached_reason', sa.String(length=40), nullable=True),
    sa.Column('override_at', UTC(timezone=True), nullable=True),
    sa.Column('supersedes', sa.Integer(), nullable=True),
    sa.Column('text_enc', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('referral_id', 'seq')
    )
    op.create_table('audit_entry',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', UTC(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('why', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entry_subject', ['subject'], unique=False)


def downgrade() -> None:
    op.drop_table('audit_entry')
    op.drop_table('consent_record')
