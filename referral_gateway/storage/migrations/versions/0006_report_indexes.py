"""report indexes: the monthly report's reads of referrals, contacts and support

Revision ID: 0006_report_indexes
Revises: 0003_web
"""

from alembic import op

# Registers the indexes with SQLModel.metadata whenever Alembic loads its scripts, so the
# models-match-migrations test sees them.
import referral_gateway.storage.report_facts  # noqa: F401


revision = '0006_report_indexes'
down_revision = '0003_web'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_referral_report_made', 'referral',
                    ['site', 'created_at', 'status', 'id'], unique=False)
    op.create_index('ix_contact_attempt_report', 'contact_attempt',
                    ['referral_id', 'outcome', 'at', 'method'], unique=False)
    op.create_index('ix_referral_case_report_support', 'referral_case',
                    ['referral_id', 'support_tier'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_referral_case_report_support', table_name='referral_case')
    op.drop_index('ix_contact_attempt_report', table_name='contact_attempt')
    op.drop_index('ix_referral_report_made', table_name='referral')
