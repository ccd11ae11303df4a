"""alert_channels.critical_bypasses_quiet: a critical incident is sent even in quiet hours

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:30:00

A budget typo overnight cannot wait for the morning: a channel can let messages about critical
incidents (opened or worsened) through its quiet window. Existing channels keep holding them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('critical_bypasses_quiet', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('alert_channels', schema=None) as batch_op:
        batch_op.drop_column('critical_bypasses_quiet')
