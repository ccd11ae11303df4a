"""anomaly list indexes: the list's order, status/account/severity filters, incident links

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:30:00

With a year of anomalies (about 1.2 million for 100,000 entities) the API's anomaly list sorted
the whole table for every page (page 1000 took seconds), counted open anomalies per account with
a sequential scan, and every ``incident_id`` lookup (the overview's related counts, the
``ON DELETE SET NULL`` of a deleted anomaly) scanned the table. ``ix_anomalies_status`` becomes
the first column of the wider status index, which serves everything it served.
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.drop_index('ix_anomalies_status')
        batch_op.create_index('ix_anomalies_status_account_severity',
                              ['status', 'account_id', 'severity'], unique=False)
        batch_op.create_index('ix_anomalies_day_score', ['day', 'score', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_incident', ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.drop_index('ix_anomalies_incident')
        batch_op.drop_index('ix_anomalies_day_score')
        batch_op.drop_index('ix_anomalies_status_account_severity')
        batch_op.create_index('ix_anomalies_status', ['status'], unique=False)
