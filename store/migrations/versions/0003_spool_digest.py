"""spool digest: the SHA-256 of each spooled message, taken when it is accepted

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:00:00

Rows from before it have none and are sent as they were.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.drop_column('digest')
