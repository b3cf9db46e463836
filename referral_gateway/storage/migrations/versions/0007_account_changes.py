"""account changes: a password its owner must change, notices to a site's team leads

Revision ID: 0007_account_changes
Revises: 0006_report_indexes

Accounts that exist already keep working as they are (must_change_password false).
"""

from alembic import op
import sqlalchemy as sa

# Registers the notice tables with SQLModel.metadata whenever Alembic loads its scripts, so
# the models-match-migrations test sees them.
import referral_gateway.storage.site_notices  # noqa: F401
import referral_gateway.storage.types


revision = '0007_account_changes'
down_revision = '0006_report_indexes'
branch_labels = None
depends_on = None

UTC = referral_gateway.storage.types.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('must_change_password', sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )
    op.create_table('site_notice',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('site_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_notice_site'), ['site'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_notice_created_at'), ['created_at'], unique=False)
    op.create_table('site_notice_read',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('read_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['site_notice.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('notice_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('site_notice_read')
    with op.batch_alter_table('site_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_notice_created_at'))
        batch_op.drop_index(batch_op.f('ix_site_notice_site'))
    op.drop_table('site_notice')
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
