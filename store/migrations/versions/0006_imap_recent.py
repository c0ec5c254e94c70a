"""imap recent: the highest UID of each IMAP mailbox a session has been told of as \\Recent

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('imap_boxes') as batch:
        batch.add_column(sa.Column('recent_uid', sa.BigInteger(), nullable=False, server_default='0'))
    # What is in a mailbox already is nobody's news.
    op.execute("UPDATE imap_boxes SET recent_uid = uid_next - 1")


def downgrade() -> None:
    with op.batch_alter_table('imap_boxes') as batch:
        batch.drop_column('recent_uid')
