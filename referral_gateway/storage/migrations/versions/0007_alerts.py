"""alerts: each person's alert choices, their Web Push devices, and the delivery records

Revision ID: 0007_alerts
Revises: 0006_report_indexes
"""

from alembic import op
import sqlalchemy as sa

# Registers the alert tables with SQLModel.metadata whenever Alembic loads its scripts, so
# the models-match-migrations test sees them.
import referral_gateway.storage.alerts  # noqa: F401
import referral_gateway.storage.types


revision = '0007_alerts'
down_revision = '0006_report_indexes'
branch_labels = None
depends_on = None

UTC = referral_gateway.storage.types.UtcDateTime


def upgrade() -> None:
    op.create_table('alert_preference',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('on_shift', sa.Boolean(), nullable=False),
    sa.Column('channels_json', sa.String(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('updated_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('push_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('endpoint', sa.String(length=2048), nullable=False),
    sa.Column('p256dh', sa.String(length=200), nullable=False),
    sa.Column('auth', sa.String(length=100), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint')
    )
    op.create_index('ix_push_subscription_user_id', 'push_subscription', ['user_id'], unique=False)
    op.create_table('alert_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('target', sa.String(length=40), nullable=False),
    sa.Column('site', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('link', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=80), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.Column('next_attempt_at', UTC(timezone=True), nullable=True),
    sa.Column('sent_at', UTC(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_delivery_user_id', 'alert_delivery', ['user_id'], unique=False)
    op.create_index('ix_alert_delivery_due', 'alert_delivery', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_delivery_due', table_name='alert_delivery')
    op.drop_index('ix_alert_delivery_user_id', table_name='alert_delivery')
    op.drop_table('alert_delivery')
    op.drop_index('ix_push_subscription_user_id', table_name='push_subscription')
    op.drop_table('push_subscription')
    op.drop_table('alert_preference')
