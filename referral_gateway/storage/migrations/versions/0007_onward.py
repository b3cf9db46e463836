"""onward referrals: the directory of services, Tasks and their history, the outbox

Revision ID: 0007_onward
Revises: 0004_consent_store
"""

import sqlalchemy as sa
from alembic import op

import referral_gateway.storage.onward  # noqa: F401  (registers the tables)
import referral_gateway.storage.types

revision = "0007_onward"
down_revision = "0004_consent_store"  # consent_record gains onward_sharing
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("onward_sharing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table('onward_service',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('offers', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('endpoint', sa.String(length=500), nullable=True),
    sa.Column('fields', sa.String(length=300), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('secret_enc', sa.LargeBinary(), nullable=True),
    sa.Column('secret_key_id', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('onward_task',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('service_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('outcome', sa.String(length=500), nullable=True),
    sa.Column('requested_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['onward_service.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_onward_task_referral_id'), 'onward_task', ['referral_id'], unique=False)
    op.create_index(op.f('ix_onward_task_service_id'), 'onward_task', ['service_id'], unique=False)
    op.create_table('onward_task_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('outcome', sa.String(length=500), nullable=True),
    sa.Column('by', sa.String(length=10), nullable=False),
    sa.Column('at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['onward_task.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_onward_task_event_task_id'), 'onward_task_event', ['task_id'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['onward_task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index(op.f('ix_outbox_state'), 'outbox', ['state'], unique=False)
    op.create_index(op.f('ix_outbox_task_id'), 'outbox', ['task_id'], unique=False)


def downgrade() -> None:
    for table in ("outbox", "onward_task_event", "onward_task", "onward_service"):
        op.drop_table(table)
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("onward_sharing")
