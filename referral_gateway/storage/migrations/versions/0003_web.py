"""web: staff accounts, sessions, sign-in attempts, casework, encrypted case notes

Revision ID: 0003_web
Revises: 0001_spine
"""

from alembic import op
import sqlalchemy as sa

# Registers the web tables with SQLModel.metadata whenever Alembic loads its scripts, so
# autogenerate and the models-match-migrations test see them.
import referral_gateway.storage.accounts  # noqa: F401
import referral_gateway.storage.casework  # noqa: F401


import referral_gateway.storage.types


revision = '0003_web'
down_revision = '0001_spine'
branch_labels = None
depends_on = None

UTC = referral_gateway.storage.types.UtcDateTime


def upgrade() -> None:
    op.create_table('staff_user',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=63), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('sites_json', sa.String(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.Column('password_changed_at', UTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('web_session',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.Column('last_seen_at', UTC(timezone=True), nullable=False),
    sa.Column('ended_at', UTC(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index('ix_web_session_user_id', ['user_id'], unique=False)

    op.create_table('sign_in_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', UTC(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sign_in_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_attempt_username_at', ['username', 'at'], unique=False)
        batch_op.create_index('ix_sign_in_attempt_address_at', ['address', 'at'], unique=False)

    op.create_table('referral_case',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('assigned_to', sa.String(length=36), nullable=True),
    sa.Column('claimed_at', UTC(timezone=True), nullable=True),
    sa.Column('escalated_at', UTC(timezone=True), nullable=True),
    sa.Column('support_tier', sa.String(length=10), nullable=True),
    sa.Column('support_started_on', sa.Date(), nullable=True),
    sa.Column('support_review_on', sa.Date(), nullable=True),
    sa.Column('closed_at', UTC(timezone=True), nullable=True),
    sa.Column('closure_outcome', sa.String(length=40), nullable=True),
    sa.Column('closed_by', sa.String(length=36), nullable=True),
    sa.Column('follow_up_due_on', sa.Date(), nullable=True),
    sa.Column('follow_up_done_at', UTC(timezone=True), nullable=True),
    sa.Column('follow_up_outcome', sa.String(length=40), nullable=True),
    sa.Column('updated_by', sa.String(length=36), nullable=True),
    sa.Column('updated_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('referral_id')
    )
    with op.batch_alter_table('referral_case', schema=None) as batch_op:
        batch_op.create_index('ix_referral_case_assigned_to', ['assigned_to'], unique=False)
        batch_op.create_index('ix_referral_case_follow_up_due_on', ['follow_up_due_on'], unique=False)

    op.create_table('contact_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('at', UTC(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contact_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_contact_attempt_referral_id', ['referral_id'], unique=False)

    op.create_table('onward_referral',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('service_type', sa.String(length=40), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('onward_referral', schema=None) as batch_op:
        batch_op.create_index('ix_onward_referral_referral_id', ['referral_id'], unique=False)

    op.create_table('case_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('body_enc', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('author', sa.String(length=36), nullable=False),
    sa.Column('at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.create_index('ix_case_note_referral_id', ['referral_id'], unique=False)

    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(
            'ix_referral_site_status_created', ['site', 'status', 'created_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_site_status_created')
    for table in ('case_note', 'onward_referral', 'contact_attempt', 'referral_case',
                  'sign_in_attempt', 'web_session', 'staff_user'):
        op.drop_table(table)
