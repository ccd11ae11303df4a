"""anomalies.impact_amount, started, duration_days: money at stake and how long it has run

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:50:00

Detection stores with each anomaly its money at stake in the account's currency
(adsentinel.detect.impact), the first day of the run of consecutive anomalous days it ends and
that run's length. Anomalies stored before stay NULL until detection judges their day again.
The index serves the list's "money at stake first" order.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impact_amount', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('started', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('duration_days', sa.Integer(), nullable=True))
        batch_op.create_index('ix_anomalies_status_impact', ['status', 'impact_amount'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.drop_index('ix_anomalies_status_impact')
        batch_op.drop_column('duration_days')
        batch_op.drop_column('started')
        batch_op.drop_column('impact_amount')
