"""account_setting_changes, entities.attribution_setting and entities.model_refused_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:40:00

A currency or timezone change of an ad account is recorded with its day (detection and training
read the history from it on); each ad set keeps the attribution setting the sync read; an entity
whose stored model the last detection refused is marked, so that status can show it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_setting_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('setting', sa.String(length=16), nullable=False),
    sa.Column('old_value', sa.String(length=64), nullable=False),
    sa.Column('new_value', sa.String(length=64), nullable=False),
    sa.Column('changed_on', sa.Date(), nullable=False),
    sa.Column('noticed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['ad_accounts.id'], name=op.f('fk_account_setting_changes_account_id_ad_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_setting_changes'))
    )
    with op.batch_alter_table('account_setting_changes', schema=None) as batch_op:
        batch_op.create_index('ix_account_setting_changes_account_day',
                              ['account_id', 'changed_on'], unique=False)
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attribution_setting', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('model_refused_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_column('model_refused_at')
        batch_op.drop_column('attribution_setting')
    with op.batch_alter_table('account_setting_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_account_setting_changes_account_day')
    op.drop_table('account_setting_changes')
