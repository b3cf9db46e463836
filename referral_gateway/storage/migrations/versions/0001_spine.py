"""spine: inbox, attendances, referrals, feed counts

Revision ID: 0001_spine
Revises: 
"""

from alembic import op
import sqlalchemy as sa

import referral_gateway.storage.types


revision = '0001_spine'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('visit_key', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('arrival_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('discharge_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('age_at_arrival', sa.Integer(), nullable=True),
    sa.Column('sex', sa.String(length=10), nullable=False),
    sa.Column('patient_class', sa.String(length=10), nullable=True),
    sa.Column('is_emergency', sa.Boolean(), nullable=True),
    sa.Column('ed_area', sa.String(length=80), nullable=True),
    sa.Column('bay', sa.String(length=80), nullable=True),
    sa.Column('codings_json', sa.String(), nullable=False),
    sa.Column('flags_json', sa.String(), nullable=False),
    sa.Column('detection_rule', sa.String(length=40), nullable=True),
    sa.Column('detection_json', sa.String(), nullable=False),
    sa.Column('identity_enc', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('nhs_number_hash', sa.String(length=64), nullable=True),
    sa.Column('nhs_number_valid', sa.Boolean(), nullable=True),
    sa.Column('patient_key_hash', sa.String(length=64), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_message_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site', 'visit_key', name='uq_attendance_site_visit')
    )
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_arrival_at'), ['arrival_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_nhs_number_hash'), ['nhs_number_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_patient_key_hash'), ['patient_key_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_site'), ['site'], unique=False)

    op.create_table('feed_count',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'sender', 'day', 'metric')
    )
    op.create_table('inbound_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('message_key', sa.String(length=300), nullable=False),
    sa.Column('message_type', sa.String(length=40), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('received_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('payload_enc', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('error_stage', sa.String(length=20), nullable=True),
    sa.Column('error_detail', sa.String(length=1000), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('processed_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'sender', 'message_key', name='uq_inbound_sender_key')
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_state_id', ['state', 'id'], unique=False)

    op.create_table('referral',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('attendance_id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('detection_rule', sa.String(length=40), nullable=False),
    sa.Column('detection_reasons_json', sa.String(), nullable=False),
    sa.Column('injury_category', sa.String(length=20), nullable=True),
    sa.Column('valueset_version', sa.String(length=40), nullable=False),
    sa.Column('voided_reason', sa.String(length=80), nullable=True),
    sa.Column('created_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', referral_gateway.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attendance_id'], ['attendance.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('attendance_id')
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_site'), ['site'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_status'), ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_status'))
        batch_op.drop_index(batch_op.f('ix_referral_site'))
        batch_op.drop_index(batch_op.f('ix_referral_created_at'))

    op.drop_table('referral')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_state_id')

    op.drop_table('inbound_message')
    op.drop_table('feed_count')
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_site'))
        batch_op.drop_index(batch_op.f('ix_attendance_nhs_number_hash'))
        batch_op.drop_index(batch_op.f('ix_attendance_arrival_at'))

    op.drop_table('attendance')

