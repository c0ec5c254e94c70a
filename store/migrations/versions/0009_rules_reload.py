"""rules reach the running gateway: the counter of rule changes made through the CLI
(``rules_epoch``, one row) and what each gateway has loaded (``rules_loaded``)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:40:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rules_epoch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute(sa.text("INSERT INTO rules_epoch (id, epoch, change) VALUES (1, 0, '')"))
    op.create_table('rules_loaded',
    sa.Column('gateway', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('error_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('gateway')
    )


def downgrade() -> None:
    op.drop_table('rules_loaded')
    op.drop_table('rules_epoch')
