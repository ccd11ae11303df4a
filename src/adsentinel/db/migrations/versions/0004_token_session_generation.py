"""api_tokens.session_generation: logging out of the dashboard ends the session on the server

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 09:50:00

A dashboard session cookie carries the generation of its token at login; logging out increments
the token's generation, so a copy of the cookie taken before stops working at once instead of
living on for the cookie's 12 hours.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
