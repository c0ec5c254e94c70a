"""login failures: failed-login counts shared by every gateway process on one store

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 05:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (login, address), per login ("" address) and per address ("" login).
    op.create_table('login_failures',
    sa.Column('login', sa.String(length=128), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('login', 'ip')
    )


def downgrade() -> None:
    op.drop_table('login_failures')
