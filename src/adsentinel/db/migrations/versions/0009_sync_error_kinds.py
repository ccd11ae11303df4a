"""sync_runs.error_kind, ad_accounts.needs_attention_kind: what kind of failure a sync error is

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 15:30:00

A stable kind derived from Meta's error code and subcode (adsentinel.sync.error_kinds), stored
beside Meta's own English text so that status, the dashboard and the "sync broken" alert tell
it in the reader's language. NULL for runs and marks from before (shown as written).
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_kind', sa.String(length=40), nullable=True))
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_attention_kind', sa.String(length=40),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.drop_column('needs_attention_kind')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('error_kind')
