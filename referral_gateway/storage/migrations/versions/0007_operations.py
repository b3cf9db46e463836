"""operations: scheduled job runs across instances, feed-silence alarms, last message per sender

Revision ID: 0007_operations
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

from referral_gateway.storage.types import UtcDateTime

revision = '0007_operations'
down_revision = '0001_spine'  # a branch of its own: migrate() upgrades "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job', sa.String(length=80), nullable=False),
        sa.Column('slot', sa.String(length=40), nullable=False),
        sa.Column('holder', sa.String(length=120), nullable=False),
        sa.Column('started_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', UtcDateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=12), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_run_job_slot', 'job_run', ['job', 'slot'], unique=False)
    op.create_table(
        'feed_alarm',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('sender', sa.String(length=200), nullable=False),
        sa.Column('site', sa.String(length=40), nullable=False),
        sa.Column('raised_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('last_message_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('allowed_minutes', sa.Integer(), nullable=False),
        sa.Column('cleared_at', UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_feed_alarm_open', 'feed_alarm',
                    ['channel', 'sender', 'cleared_at'], unique=False)
    op.create_index('ix_inbound_sender_received', 'inbound_message',
                    ['channel', 'sender', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_sender_received', table_name='inbound_message')
    op.drop_index('ix_feed_alarm_open', table_name='feed_alarm')
    op.drop_table('feed_alarm')
    op.drop_index('ix_job_run_job_slot', table_name='job_run')
    op.drop_table('job_run')
