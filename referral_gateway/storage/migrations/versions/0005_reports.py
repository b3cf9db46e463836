"""reports: frozen snapshots, push state, hub receipts

Revision ID: 0005_reports
Revises: 0001_spine
"""

from alembic import op
import sqlalchemy as sa

import referral_gateway.storage.types


revision = '0005_reports'
down_revision = '0001_spine'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_snapshot',
    sa.Column('report_id', sa.String(length=64), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('report_id'),
    sa.UniqueConstraint('site', 'month', name='uq_report_snapshot_site_month')
    )
    op.create_table('report_push',
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('report_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('site', 'month')
    )
    op.create_table('hub_receipt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.String(length=64), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('report_id')
    )
    op.create_index('ix_hub_receipt_month_site', 'hub_receipt', ['month', 'site'], unique=False)
    # monthly screened counts per site: an index-only scan instead of reading the table
    op.create_index('ix_attendance_report_screened', 'attendance',
                    ['site', 'arrival_at', 'status', 'detection_rule'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_attendance_report_screened', table_name='attendance')
    op.drop_index('ix_hub_receipt_month_site', table_name='hub_receipt')
    op.drop_table('hub_receipt')
    op.drop_table('report_push')
    op.drop_table('report_snapshot')
