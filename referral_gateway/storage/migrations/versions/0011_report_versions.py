"""report versions: a month's report may be re-issued (a correction with a reason) and the
hub keeps every version; a push refused for good remembers the configuration it was refused
under, so hourly retries wait for that to change

Revision ID: 0011_report_versions
Revises: 0005_reports
"""

import sqlalchemy as sa
from alembic import op

revision = '0011_report_versions'
down_revision = '0005_reports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('report_snapshot') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch.drop_constraint('uq_report_snapshot_site_month', type_='unique')
        batch.create_unique_constraint(
            'uq_report_snapshot_site_month_version', ['site', 'month', 'version']
        )
    with op.batch_alter_table('report_push') as batch:
        batch.add_column(sa.Column('refused_under', sa.String(length=64), nullable=True))
    with op.batch_alter_table('hub_receipt') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
    # receipts held before versions: number each site and month's by arrival
    conn = op.get_bind()
    rows = conn.execute(
        sa.text('SELECT id, site, month FROM hub_receipt ORDER BY site, month, received_at, id')
    ).all()
    seen: dict[tuple[str, str], int] = {}
    for row_id, site, month in rows:
        seen[(site, month)] = seen.get((site, month), 0) + 1
        if seen[(site, month)] > 1:
            conn.execute(
                sa.text('UPDATE hub_receipt SET version = :v WHERE id = :id'),
                {'v': seen[(site, month)], 'id': row_id},
            )
    with op.batch_alter_table('hub_receipt') as batch:
        batch.create_unique_constraint(
            'uq_hub_receipt_site_month_version', ['site', 'month', 'version']
        )


def downgrade() -> None:
    with op.batch_alter_table('hub_receipt') as batch:
        batch.drop_constraint('uq_hub_receipt_site_month_version', type_='unique')
        batch.drop_column('reason')
        batch.drop_column('version')
    with op.batch_alter_table('report_push') as batch:
        batch.drop_column('refused_under')
    op.execute('DELETE FROM report_snapshot WHERE version > 1')
    with op.batch_alter_table('report_snapshot') as batch:
        batch.drop_constraint('uq_report_snapshot_site_month_version', type_='unique')
        batch.create_unique_constraint('uq_report_snapshot_site_month', ['site', 'month'])
        batch.drop_column('reason')
        batch.drop_column('version')
