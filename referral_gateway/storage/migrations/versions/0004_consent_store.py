"""consent store: consent records, audit trail, key canary

Revision ID: 0004_consent_store
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

# Registers consent_record, audit_entry and key_canary with SQLModel.metadata whenever Alembic
# loads its scripts, so autogenerate and the models-match-migrations test see them.
import referral_gateway.storage.consent_tables  # noqa: F401
from referral_gateway.storage.types import UtcDateTime


revision = "0004_consent_store"
down_revision = "0001_spine"  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_entry',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('why', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_subject'), ['subject'], unique=False)

    op.create_table('key_canary',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('token', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('consent_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', UtcDateTime(timezone=True), nullable=False),
    sa.Column('giver', sa.String(length=40), nullable=True),
    sa.Column('young_person_age', sa.Integer(), nullable=True),
    sa.Column('not_approached_reason', sa.String(length=40), nullable=True),
    sa.Column('authoriser_role', sa.String(length=120), nullable=True),
    sa.Column('override_at', UtcDateTime(timezone=True), nullable=True),
    sa.Column('supersedes', sa.Integer(), nullable=True),
    sa.Column('details_enc', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('details_erased_at', UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('referral_id', 'seq', name='uq_consent_referral_seq')
    )
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_record_referral_id'), ['referral_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_record_referral_id'))

    op.drop_table('consent_record')
    op.drop_table('key_canary')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_subject'))

    op.drop_table('audit_entry')
