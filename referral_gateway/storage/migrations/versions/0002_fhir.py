"""fhir: resources (current version, encrypted), identifier keys, API clients, poll state

Revision ID: 0002_fhir
Revises: 0001_spine
"""

from alembic import op
import sqlalchemy as sa

# Registers the fhir_* tables with SQLModel.metadata whenever Alembic loads its scripts, so
# autogenerate and the models-match-migrations test see them.
import referral_gateway.storage.fhir_tables  # noqa: F401
import referral_gateway.storage.types


revision = '0002_fhir'
down_revision = '0001_spine'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fhir_api_client',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('fhir_identifier',
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('site', 'resource_type', 'key_hash', 'resource_id')
    )
    op.create_table('fhir_poll_state',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('watermark', sa.String(length=40), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('source')
    )
    op.create_table('fhir_resource',
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_updated', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_key', sa.String(length=64), nullable=True),
    sa.Column('encounter_key', sa.String(length=64), nullable=True),
    sa.Column('content_enc', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('site', 'resource_type', 'resource_id')
    )
    with op.batch_alter_table('fhir_resource', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_resource_encounter', ['site', 'resource_type', 'encounter_key'], unique=False)
        batch_op.create_index('ix_fhir_resource_subject', ['site', 'resource_type', 'subject_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('fhir_resource', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_resource_subject')
        batch_op.drop_index('ix_fhir_resource_encounter')

    op.drop_table('fhir_resource')
    op.drop_table('fhir_poll_state')
    op.drop_table('fhir_identifier')
    op.drop_table('fhir_api_client')
