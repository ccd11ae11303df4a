"""ad_accounts.locale: the language of an account's alerts and report

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 13:00:00

en or pt_BR (adsentinel accounts add/edit --locale); NULL means the ``locale`` setting
(ADSENTINEL_LOCALE, English by default), so existing accounts keep English alerts.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.drop_column('locale')
